//! The experiment report: per variant, traffic, verdicts with their confidence sequence,
//! cost (the client's own calls, and judge and shadow calls apart), latency and feedback; at
//! the top, the leader, whether it is decided, the method, and promotion. Read from the
//! configured ledger store ([`super::source`]); shared by `switchyard experiments report`, `GET /admin/experiments/NAME`
//! and the promoter.

use super::source::{ExperimentData, ExperimentSource};
use super::stats::{decide_pairwise, decide_scores};
use super::store::Shift;
use crate::config::experiments::{ExperimentConfig, JudgeMode, Promote};
use crate::config::Config;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

pub const METHOD: &str = "anytime-valid confidence sequences (predictable plug-in empirical \
Bernstein, Waudby-Smith & Ramdas 2023); per-variant sequences at alpha/k in score mode, one \
sequence on the win share in pairwise mode";

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Metric {
    pub count: u64,
    pub mean: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VariantReport {
    pub name: String,
    pub target: String,
    pub weight: u32,
    pub requests: u64,
    pub judged: u64,
    pub unscored: u64,
    /// Score mode: the mean score (1 to 10) and its interval; pairwise: the win share (0 to 1,
    /// a tie counting half) and its interval.
    pub mean_score: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub wins: u64,
    pub losses: u64,
    pub ties: u64,
    /// The client's own calls (`None`: some cost is unknown).
    pub cost_usd: Option<Decimal>,
    pub cost_per_request_usd: Option<Decimal>,
    pub judge_cost_usd: Option<Decimal>,
    pub shadow_cost_usd: Option<Decimal>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub feedback: BTreeMap<String, Metric>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Promotion {
    /// `off` or `when_decided`.
    pub mode: &'static str,
    /// `off`, `waiting` (not decided), `ready`, `blocked` (a guard), or `promoted`.
    pub status: &'static str,
    pub variant: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub experiment: String,
    pub route: String,
    /// `score`, `pairwise`, or `none` (no judge: feedback only).
    pub mode: &'static str,
    pub method: &'static str,
    pub alpha: f64,
    pub leader: Option<String>,
    pub decided: bool,
    pub promotion: Promotion,
    pub shifts: Vec<Shift>,
    pub variants: Vec<VariantReport>,
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

fn sum(a: Option<Decimal>, b: Option<Decimal>) -> Option<Decimal> {
    Some(a?.saturating_add(b?))
}

/// The report of `exp` from its stored results.
pub fn build(
    data: ExperimentData,
    exp: &ExperimentConfig,
    config: &Config,
) -> Result<Report, String> {
    let ExperimentData {
        requests,
        judgments,
        feedback,
        shifts,
    } = data;
    let index = |name: &str| exp.variants.iter().position(|v| v.name == name);
    let mut variants: Vec<VariantReport> = exp
        .variants
        .iter()
        .map(|v| VariantReport {
            name: v.name.clone(),
            target: format!(
                "{}/{}",
                config
                    .providers
                    .get(v.target.provider)
                    .map_or("?", |p| p.name.as_str()),
                v.target.model
            ),
            weight: v.weight,
            requests: 0,
            judged: 0,
            unscored: 0,
            mean_score: None,
            ci_low: None,
            ci_high: None,
            wins: 0,
            losses: 0,
            ties: 0,
            cost_usd: Some(Decimal::ZERO),
            cost_per_request_usd: None,
            judge_cost_usd: Some(Decimal::ZERO),
            shadow_cost_usd: Some(Decimal::ZERO),
            p50_ms: None,
            p95_ms: None,
            feedback: BTreeMap::new(),
        })
        .collect();
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for r in &requests {
        let Some(i) = index(&r.variant) else { continue };
        let v = &mut variants[i];
        v.requests += 1;
        v.cost_usd = sum(v.cost_usd, r.served_cost);
        v.judge_cost_usd = sum(v.judge_cost_usd, r.judge_cost);
        v.shadow_cost_usd = sum(v.shadow_cost_usd, r.shadow_cost);
        if let (true, Some(ms)) = (r.ok, r.total_ms) {
            latencies[i].push(ms);
        }
    }
    for (v, lat) in variants.iter_mut().zip(latencies.iter_mut()) {
        lat.sort_by(f64::total_cmp);
        v.p50_ms = quantile(lat, 0.5);
        v.p95_ms = quantile(lat, 0.95);
        if v.requests > 0 {
            v.cost_per_request_usd = v
                .cost_usd
                .map(|c| (c / Decimal::from(v.requests)).round_dp(10).normalize());
        }
    }
    let mode = exp.judge.as_ref().map(|j| j.mode);
    let mut scores: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut raw: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut first_wins: Vec<f64> = Vec::new();
    for j in &judgments {
        let Some(i) = index(&j.variant) else { continue };
        if j.unscored {
            variants[i].unscored += 1;
            continue;
        }
        variants[i].judged += 1;
        match mode {
            Some(JudgeMode::Score) => {
                if let Some(s) = j.score {
                    raw[i].push(s);
                    scores[i].push((s - 1.0) / 9.0);
                }
            }
            Some(JudgeMode::Pairwise) => {
                let (Some(o), Some(k)) = (j.outcome, j.opponent.as_deref().and_then(index)) else {
                    continue;
                };
                let (win, lose) = match o {
                    x if x > 0.75 => (Some(i), Some(k)),
                    x if x < 0.25 => (Some(k), Some(i)),
                    _ => (None, None),
                };
                match (win, lose) {
                    (Some(w), Some(l)) => {
                        variants[w].wins += 1;
                        variants[l].losses += 1;
                    }
                    _ => {
                        variants[i].ties += 1;
                        variants[k].ties += 1;
                    }
                }
                first_wins.push(if i == 0 { o } else { 1.0 - o });
            }
            None => {}
        }
    }
    let decision = match mode {
        Some(JudgeMode::Pairwise) => Some(decide_pairwise(&first_wins, exp.alpha)),
        Some(JudgeMode::Score) => Some(decide_scores(&scores, exp.alpha)),
        None => None,
    };
    if let Some(d) = &decision {
        for (i, v) in variants.iter_mut().enumerate() {
            let Some((m, lo, hi)) = d.intervals.get(i).copied().flatten() else {
                continue;
            };
            let (m, lo, hi) = match mode {
                Some(JudgeMode::Score) => {
                    let mean = raw[i].iter().sum::<f64>() / raw[i].len().max(1) as f64;
                    (mean, 1.0 + 9.0 * lo, 1.0 + 9.0 * hi)
                }
                _ => (m, lo, hi),
            };
            v.mean_score = Some(m);
            v.ci_low = Some(lo);
            v.ci_high = Some(hi);
        }
    }
    for (variant, metric, count, mean) in feedback {
        if let Some(i) = index(&variant) {
            variants[i].feedback.insert(metric, Metric { count, mean });
        }
    }
    let leader = decision
        .as_ref()
        .and_then(|d| d.leader)
        .map(|i| variants[i].name.clone());
    let decided = decision.as_ref().is_some_and(|d| d.decided);
    let mut report = Report {
        experiment: exp.name.clone(),
        route: exp.route.clone(),
        mode: mode.map_or("none", JudgeMode::as_str),
        method: METHOD,
        alpha: exp.alpha,
        leader,
        decided,
        promotion: Promotion {
            mode: match exp.promote {
                Promote::Off => "off",
                Promote::WhenDecided => "when_decided",
            },
            status: "off",
            variant: None,
            reason: None,
        },
        shifts,
        variants,
    };
    report.promotion = super::promote::evaluate(exp, &report);
    Ok(report)
}

/// Reads the report of `name` from `source` (blocking: call it off the proxy's threads).
pub fn read(source: &dyn ExperimentSource, config: &Config, name: &str) -> Result<Report, String> {
    let exp = config
        .experiment(name)
        .ok_or_else(|| format!("no experiment named `{name}`"))?;
    build(source.data(&exp.name)?, exp, config)
}

/// Every experiment: name, route, mode, leader, decided, a one-word `decision`, promotion
/// status, requests, and each variant's report (the dashboard's table reads them).
pub fn list(
    source: &dyn ExperimentSource,
    config: &Config,
) -> Result<Vec<serde_json::Value>, String> {
    config
        .experiments
        .iter()
        .map(|e| {
            let r = build(source.data(&e.name)?, e, config)?;
            Ok(serde_json::json!({
                "name": r.experiment,
                "route": r.route,
                "mode": r.mode,
                "leader": r.leader,
                "decided": r.decided,
                "decision": match (&r.leader, r.decided) {
                    (Some(l), true) => format!("decided: {l}"),
                    (Some(l), false) => format!("leading: {l}"),
                    (None, _) => "no verdicts".to_owned(),
                },
                "promotion": r.promotion.status,
                "requests": r.variants.iter().map(|v| v.requests).sum::<u64>(),
                "variants": r.variants,
            }))
        })
        .collect()
}

/// The report as text, for the command line.
pub fn render(r: &Report) -> String {
    let money = |d: Option<Decimal>| d.map_or("unknown".to_owned(), |d| format!("${d}"));
    let opt = |x: Option<f64>, p: usize| x.map_or("-".to_owned(), |x| format!("{x:.p$}"));
    let mut out = format!(
        "experiment {} (route {}, {} mode)\nleader: {}  decided: {}\nmethod: {} (alpha {})\n\
         promotion: {} ({}){}\n\n",
        r.experiment,
        r.route,
        r.mode,
        r.leader.as_deref().unwrap_or("none"),
        r.decided,
        r.method,
        r.alpha,
        r.promotion.status,
        r.promotion.mode,
        r.promotion
            .reason
            .as_deref()
            .map_or(String::new(), |s| format!(": {s}")),
    );
    out.push_str(&format!(
        "{:<16} {:>8} {:>7} {:>8} {:>7} {:>17} {:>5} {:>6} {:>5} {:>12} {:>12} {:>10} {:>10} {:>8} {:>8}\n",
        "variant", "requests", "judged", "unscored", "mean", "interval", "wins", "losses", "ties",
        "cost", "per request", "judge", "shadow", "p50 ms", "p95 ms"
    ));
    for v in &r.variants {
        out.push_str(&format!(
            "{:<16} {:>8} {:>7} {:>8} {:>7} {:>17} {:>5} {:>6} {:>5} {:>12} {:>12} {:>10} {:>10} {:>8} {:>8}\n",
            v.name,
            v.requests,
            v.judged,
            v.unscored,
            opt(v.mean_score, 2),
            match (v.ci_low, v.ci_high) {
                (Some(l), Some(h)) => format!("[{l:.2}, {h:.2}]"),
                _ => "-".to_owned(),
            },
            v.wins,
            v.losses,
            v.ties,
            money(v.cost_usd),
            money(v.cost_per_request_usd),
            money(v.judge_cost_usd),
            money(v.shadow_cost_usd),
            opt(v.p50_ms, 0),
            opt(v.p95_ms, 0),
        ));
        for (m, f) in &v.feedback {
            out.push_str(&format!(
                "  feedback {m}: {} x, mean {:.3}\n",
                f.count, f.mean
            ));
        }
    }
    for s in &r.shifts {
        out.push_str(&format!(
            "shift at {} ms: {} {}: {}\n",
            s.ts_ms,
            s.kind,
            s.variant.as_deref().unwrap_or("-"),
            s.reason
        ));
    }
    out
}
