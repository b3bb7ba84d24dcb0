//! The judge, in the background. A sampled request is queued after its answer was delivered
//! (a bounded queue per experiment: when it is full the sample is skipped and counted); a
//! dispatcher hands queued samples to at most `max_concurrency` workers. Each worker:
//!
//! 1. pairwise mode: sends the same request to the other variant (a *shadow* call, with that
//!    variant's prompt and params), and shows the two answers in a random order;
//! 2. asks the judge target for JSON ([`super::verdict`]); a reply without a valid verdict is
//!    asked again once, then recorded as unscored;
//! 3. adds every call it made to the judged request's ledger row as attempts with the role
//!    `shadow` or `judge`, each with its tokens and exact cost, and records the verdict.
//!
//! Every call goes through the outbound client ([`crate::outbound`]): the same admission,
//! keys, breakers and timeouts as proxied requests.

use super::verdict::{self, Verdict, Winner};
use crate::config::experiments::{ExperimentConfig, JudgeMode};
use crate::config::Target;
use crate::dialect::translate::{decode_response, RequestTranslator};
use crate::dialect::{Dialect, Endpoint};
use crate::ledger::{LedgerAttempt, Role};
use crate::outbound::{OutboundClient, OutboundRequest};
use crate::proxy::GatewayState;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// The largest answer read from a judge or shadow call.
const MAX_ANSWER: usize = 4 << 20;
/// How long one judge or shadow call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// One sampled request, waiting to be judged.
pub struct JudgeJob {
    /// The state the request ran under (its config: the experiment, targets and prices).
    pub state: Arc<GatewayState>,
    pub experiment: String,
    /// The served variant's index in the experiment's `variants`.
    pub variant: usize,
    pub request_id: String,
    /// The client's dialect and its body before the variant was applied.
    pub dialect: Dialect,
    pub body: Bytes,
    /// The answer the client got (its generated text).
    pub answer: String,
    /// The request's trace, when traces are exported: judge and shadow calls become child
    /// spans of the request's span.
    pub trace: Option<crate::telemetry::calls::Parent>,
}

/// What a worker needs besides the job.
#[derive(Clone)]
pub struct Tools {
    pub outbound: Arc<OutboundClient>,
    pub ledger: Option<crate::ledger::LedgerHandle>,
    pub counters: Arc<super::Counters>,
}

/// The text and the ledger attempt of one call; `None` text when it failed.
struct Called {
    text: Option<String>,
    attempt: LedgerAttempt,
}

/// One call to `target` with `body` (written in `from`'s dialect with the target's model);
/// with a `trace`, a child span of the request's (and its `traceparent` sent to the provider).
async fn call(
    state: &Arc<GatewayState>,
    outbound: &OutboundClient,
    target: &Target,
    from: Dialect,
    body: Bytes,
    role: Role,
    trace: Option<&crate::telemetry::calls::Parent>,
) -> Called {
    let Some(parent) = trace else {
        return call_once(state, outbound, target, from, body, role, None).await;
    };
    let child = parent.child();
    let started = std::time::SystemTime::now();
    let mut finish = Vec::new();
    let called = call_once(
        state,
        outbound,
        target,
        from,
        body,
        role,
        Some((&child, &mut finish)),
    )
    .await;
    crate::telemetry::calls::record_call(
        parent,
        &child,
        crate::telemetry::calls::CallSpan {
            op: "chat",
            attempt: &called.attempt,
            finish_reasons: &finish,
            started,
            ended: std::time::SystemTime::now(),
        },
    );
    called
}

async fn call_once(
    state: &Arc<GatewayState>,
    outbound: &OutboundClient,
    target: &Target,
    from: Dialect,
    body: Bytes,
    role: Role,
    span: Option<(&crate::telemetry::calls::Child, &mut Vec<String>)>,
) -> Called {
    let cfg = &state.config;
    let Some(provider) = cfg.providers.get(target.provider) else {
        return Called {
            text: None,
            attempt: LedgerAttempt::unbilled(role, "", &target.model),
        };
    };
    let mut attempt = LedgerAttempt::unbilled(role, &provider.name, &target.model);
    let to = provider.dialect;
    let body = if to == from {
        Ok(body)
    } else {
        RequestTranslator::new(from, &body, &cfg.translation)
            .and_then(|t| t.body_for(to, &target.model, &cfg.translation))
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            attempt.error_class = Some("untranslatable".into());
            log::warn!(
                "experiments: {} call to {}: {}",
                role,
                provider.name,
                e.message
            );
            return Called {
                text: None,
                attempt,
            };
        }
    };
    let req = OutboundRequest {
        target: target.clone(),
        endpoint: Endpoint::ChatCompletions,
        body,
        stream: false,
        deadline: tokio::time::Instant::now() + CALL_TIMEOUT.min(cfg.resilience.deadline),
        headers: span
            .as_ref()
            .and_then(|(c, _)| http::HeaderValue::from_str(&c.traceparent).ok())
            .map(|v| vec![(http::HeaderName::from_static("traceparent"), v)])
            .unwrap_or_default(),
    };
    let mut resp = match outbound.send(state, req).await {
        Ok(r) => r,
        Err(e) => {
            attempt.key_index = e.attempt.key_index.and_then(|k| u32::try_from(k).ok());
            attempt.ms = Some(e.attempt.elapsed.as_secs_f64() * 1000.0);
            attempt.error_class = Some(e.class().to_owned());
            log::warn!("experiments: {role} call failed: {e}");
            return Called {
                text: None,
                attempt,
            };
        }
    };
    attempt.key_index = resp.attempt.key_index.and_then(|k| u32::try_from(k).ok());
    attempt.ms = Some(resp.attempt.elapsed.as_secs_f64() * 1000.0);
    attempt.status = Some(resp.status);
    let body = match resp.read_to_end(MAX_ANSWER).await {
        Ok(b) => b,
        Err(e) => {
            attempt.error_class = Some(e.class().to_owned());
            return Called {
                text: None,
                attempt,
            };
        }
    };
    if !(200..300).contains(&resp.status) {
        attempt.error_class = Some(format!("status_{}", resp.status));
        return Called {
            text: None,
            attempt,
        };
    }
    if let Some((_, finish)) = span {
        // For the call's span: why the answer stopped, in the provider's own words.
        let mut tally = crate::usage::StreamTally::new(to, false, false);
        tally.feed(body.clone());
        tally.finish();
        *finish = tally.output().finish_reasons().to_vec();
    }
    let Ok(answer) = decode_response(to, &body) else {
        attempt.error_class = Some("unreadable".into());
        return Called {
            text: None,
            attempt,
        };
    };
    let usage = answer.usage.unwrap_or_default();
    attempt.usage = usage;
    match cfg.pricing.cost(provider, &target.model, &usage) {
        Some(c) => attempt.cost_usd = Some(c.total),
        None => {
            attempt.cost_usd = None;
            attempt.cost_unknown = true;
        }
    }
    let text = answer
        .content
        .iter()
        .filter_map(|p| match p {
            crate::dialect::canonical::Part::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("");
    Called {
        text: Some(text),
        attempt,
    }
}

/// The other variant's answer to the same request (pairwise mode).
async fn shadow(job: &JudgeJob, exp: &ExperimentConfig, other: usize, t: &Tools) -> Called {
    let v = &exp.variants[other];
    let prepared = (|| {
        let body = super::apply::apply(job.dialect, &job.body, v)
            .map_err(|e| e.message)?
            .unwrap_or_else(|| job.body.clone());
        let mut req: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let obj = req.as_object_mut().ok_or("not an object")?;
        obj.insert("model".into(), v.target.model.clone().into());
        obj.insert("stream".into(), false.into());
        obj.remove("stream_options");
        serde_json::to_vec(&req).map_err(|e| e.to_string())
    })();
    match prepared {
        Ok(body) => {
            call(
                &job.state,
                &t.outbound,
                &v.target,
                job.dialect,
                Bytes::from(body),
                Role::Shadow,
                job.trace.as_ref(),
            )
            .await
        }
        Err(e) => {
            log::warn!("experiments: shadow request for {}: {e}", job.request_id);
            let provider = job
                .state
                .config
                .providers
                .get(v.target.provider)
                .map_or("", |p| p.name.as_str());
            Called {
                text: None,
                attempt: LedgerAttempt::unbilled(Role::Shadow, provider, &v.target.model),
            }
        }
    }
}

/// Asks the judge, once more if the reply holds no verdict. Every call is kept in `attempts`.
async fn ask(
    job: &JudgeJob,
    exp: &ExperimentConfig,
    answers: &[&str],
    t: &Tools,
    attempts: &mut Vec<LedgerAttempt>,
) -> Result<Verdict, String> {
    let Some(judge) = &exp.judge else {
        return Err("no judge".into());
    };
    let convo = verdict::conversation(job.dialect, &job.body);
    let req = verdict::request(
        &judge.target.model,
        judge.mode,
        &judge.rubric,
        &convo,
        answers,
    );
    let body = Bytes::from(req.to_string());
    let mut why = String::from("the judge's reply held no verdict");
    for _ in 0..2 {
        let c = call(
            &job.state,
            &t.outbound,
            &judge.target,
            Dialect::OpenAi,
            body.clone(),
            Role::Judge,
            job.trace.as_ref(),
        )
        .await;
        let failed = c.attempt.error_class.clone();
        attempts.push(c.attempt);
        match c.text {
            Some(text) => match verdict::parse(judge.mode, &text) {
                Some(v) => return Ok(v),
                None => why = "the judge's reply held no verdict".into(),
            },
            None => why = format!("the judge call failed ({})", failed.unwrap_or_default()),
        }
    }
    Err(why)
}

/// Judges one sampled request and records everything it cost.
pub async fn run(job: JudgeJob, t: Tools) {
    let Some(exp) = job.state.config.experiment(&job.experiment).cloned() else {
        return;
    };
    let Some(judge) = exp.judge.clone() else {
        return;
    };
    let Some(served) = exp.variants.get(job.variant) else {
        return;
    };
    let mut attempts = Vec::new();
    let mut j = super::store::Judgment {
        request_id: job.request_id.clone(),
        experiment: exp.name.clone(),
        variant: served.name.clone(),
        mode: judge.mode.as_str().to_owned(),
        score: None,
        opponent: None,
        first: None,
        winner: None,
        outcome: None,
        unscored: None,
    };
    match judge.mode {
        JudgeMode::Score => match ask(&job, &exp, &[&job.answer], &t, &mut attempts).await {
            Ok(Verdict::Score(s)) => j.score = Some(s),
            Ok(Verdict::Winner(_)) => j.unscored = Some("wrong verdict kind".into()),
            Err(why) => j.unscored = Some(why),
        },
        JudgeMode::Pairwise => {
            let other = usize::from(job.variant == 0);
            let opponent = &exp.variants[other];
            j.opponent = Some(opponent.name.clone());
            let sh = shadow(&job, &exp, other, &t).await;
            attempts.push(sh.attempt);
            match sh.text {
                None => j.unscored = Some("the shadow call failed".into()),
                Some(theirs) => {
                    // A random order, recorded, so a judge's taste for the first (or second)
                    // answer favours neither variant.
                    let served_first: bool = rand::random();
                    let answers: [&str; 2] = if served_first {
                        [&job.answer, &theirs]
                    } else {
                        [&theirs, &job.answer]
                    };
                    j.first = Some(if served_first {
                        served.name.clone()
                    } else {
                        opponent.name.clone()
                    });
                    match ask(&job, &exp, &answers, &t, &mut attempts).await {
                        Ok(Verdict::Winner(w)) => {
                            j.winner = Some(w.as_str().to_owned());
                            j.outcome = Some(match (w, served_first) {
                                (Winner::Tie, _) => 0.5,
                                (Winner::A, true) | (Winner::B, false) => 1.0,
                                _ => 0.0,
                            });
                        }
                        Ok(Verdict::Score(_)) => j.unscored = Some("wrong verdict kind".into()),
                        Err(why) => j.unscored = Some(why),
                    }
                }
            }
        }
    }
    let label = if j.unscored.is_some() {
        "unscored"
    } else {
        "judged"
    };
    t.counters.count(&exp.name, label);
    if let Some(ledger) = &t.ledger {
        ledger
            .append(crate::ledger::Append {
                request_id: job.request_id.clone(),
                attempts,
            })
            .await;
        ledger.execute(super::store::record_judgment(j)).await;
    }
}
