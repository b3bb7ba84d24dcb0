//! `request_filter`'s work: classify the endpoint, authenticate, read and check the body,
//! resolve the model into candidates. Either the request is ready to proxy, or the gateway has
//! already answered it (health, model list, or an error in the client's dialect).

use super::ctx::RequestCtx;
use super::downstream;
use super::models;
use super::respond;
use super::GatewayState;
use crate::auth::presented_key;
use crate::dialect::probe::with_include_usage;
use crate::dialect::translate::RequestTranslator;
use crate::dialect::{probe_request, Dialect, Endpoint};
use crate::error::{ErrorKind, GatewayError};
use bytes::BytesMut;
use http::Method;
use pingora_proxy::Session;
use std::time::Duration;

/// What a request path is.
enum Target {
    Api(Endpoint),
    Models,
    Health,
    WrongMethod,
    Unknown,
}

fn classify(method: &Method, path: &str) -> Target {
    let path = path.strip_suffix('/').unwrap_or(path);
    let (endpoint, wants) = match path {
        "/v1/chat/completions" | "/chat/completions" => {
            (Some(Endpoint::ChatCompletions), Method::POST)
        }
        "/v1/messages" => (Some(Endpoint::Messages), Method::POST),
        "/v1/embeddings" | "/embeddings" => (Some(Endpoint::Embeddings), Method::POST),
        "/v1/models" | "/models" => (None, Method::GET),
        "/healthz" => {
            return if method == Method::GET || method == Method::HEAD {
                Target::Health
            } else {
                Target::WrongMethod
            }
        }
        _ => return Target::Unknown,
    };
    if *method != wants {
        return Target::WrongMethod;
    }
    match endpoint {
        Some(e) => Target::Api(e),
        None => Target::Models,
    }
}

/// The dialect to answer in before the endpoint is known: Anthropic's SDK sends
/// `anthropic-version` on every request.
fn guess_dialect(session: &Session) -> Dialect {
    let req = session.req_header();
    if req.uri.path().starts_with("/v1/messages") || req.headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    }
}

/// Returns `Ok(true)` when the gateway has answered the request itself.
pub async fn intake(
    gw: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora_error::Result<bool> {
    match prepare(gw, session, ctx).await {
        Ok(Prepared::Proxy) => Ok(false),
        Ok(Prepared::Answered) => Ok(true),
        Err(Failure::Gateway(e)) => {
            respond::error(session, ctx, e).await?;
            Ok(true)
        }
        Err(Failure::Io(e)) => Err(e),
    }
}

enum Prepared {
    Proxy,
    Answered,
}

enum Failure {
    Gateway(GatewayError),
    /// The client connection failed; nothing can be answered.
    Io(Box<pingora_error::Error>),
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Self {
        Failure::Gateway(e)
    }
}

async fn prepare(
    gw: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<Prepared, Failure> {
    ctx.dialect = guess_dialect(session);
    let method = session.req_header().method.clone();
    let target = classify(&method, session.req_header().uri.path());
    let endpoint = match target {
        Target::Health => {
            ctx.body_read = true;
            respond::json(session, ctx, 200, br#"{"status":"ok"}"#.to_vec(), &[])
                .await
                .map_err(Failure::Io)?;
            return Ok(Prepared::Answered);
        }
        Target::Unknown => {
            return Err(GatewayError::new(
                ErrorKind::NotFound,
                format!(
                    "Unknown request URL: {} {}. Endpoints: POST /v1/chat/completions, POST /v1/messages, POST /v1/embeddings, GET /v1/models",
                    method,
                    session.req_header().uri.path()
                ),
            )
            .into())
        }
        Target::WrongMethod => {
            return Err(GatewayError::new(
                ErrorKind::MethodNotAllowed,
                format!("Method {method} is not allowed on {}", session.req_header().uri.path()),
            )
            .into())
        }
        Target::Models => None,
        Target::Api(e) => Some(e),
    };
    // Known from the path: a rejected call to a model endpoint is still a recorded call.
    ctx.endpoint = endpoint;

    let key = match presented_key(session.req_header()) {
        None => {
            return Err(GatewayError::new(
                ErrorKind::Unauthorized,
                "Missing gateway key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
            )
            .into())
        }
        Some(k) => gw
            .keys
            .authenticate(k)
            .ok_or_else(|| GatewayError::new(ErrorKind::Unauthorized, "Invalid gateway key"))?,
    };
    ctx.key_name = Some(key.name.clone());

    let Some(endpoint) = endpoint else {
        ctx.body_read = true; // GET: no body expected
        let body = models::list(gw, key);
        respond::json(session, ctx, 200, body, &[])
            .await
            .map_err(Failure::Io)?;
        return Ok(Prepared::Answered);
    };
    ctx.endpoint = Some(endpoint);
    ctx.dialect = endpoint.dialect();

    ctx.feature = session
        .req_header()
        .headers
        .get("x-switchyard-feature")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().chars().take(64).collect::<String>())
        .filter(|v| !v.is_empty());
    // The request's deadline runs from its arrival: the body's upload counts against it, and a
    // body that trickles in (a few bytes just inside pingora's 60 s per-read timeout, for
    // ever) gets 408 once the longest deadline any route could have is spent.
    let policy = &gw.config.resilience;
    let client = client_deadline(session.req_header());
    let upload_budget = client.map_or(gw.config.max_deadline(), |c| {
        c.min(gw.config.max_deadline())
    });
    match tokio::time::timeout(upload_budget, read_body(gw, session, ctx)).await {
        Ok(read) => read?,
        Err(_) => {
            ctx.close_connection = true;
            return Err(body_timeout(upload_budget).into());
        }
    }
    let mut probe = probe_request(&ctx.body)?;
    if endpoint == Endpoint::ChatCompletions && probe.stream {
        // Every stream must report usage for its cost; the extra chunk is stripped again for
        // clients that did not ask for it.
        ctx.client_wants_usage = probe.include_usage;
        if let Some(body) = with_include_usage(&ctx.body, &probe) {
            probe = probe_request(&body)?;
            ctx.body = body;
        }
    }
    if !probe.model.bytes().all(|b| b.is_ascii_graphic()) || probe.model.len() > 256 {
        // Model names travel in response headers and metric labels.
        return Err(GatewayError::bad_request(
            "`model` must be at most 256 visible ASCII characters",
        )
        .with_param("model")
        .into());
    }
    if !key.allows(&probe.model) {
        return Err(GatewayError::new(
            ErrorKind::Forbidden,
            format!(
                "The gateway key `{}` may not use the model `{}`",
                key.name, probe.model
            ),
        )
        .with_param("model")
        .into());
    }
    let resolved = gw.router.resolve(&probe.model, endpoint)?;
    ctx.model = Some(probe.model);
    ctx.model_span = probe.model_span;
    ctx.stream = probe.stream;
    let route = resolved.route.as_deref().and_then(|r| gw.config.route(r));
    ctx.max_attempts = route
        .and_then(|r| r.max_attempts)
        .unwrap_or(policy.max_attempts);
    let mut budget = route.and_then(|r| r.deadline).unwrap_or(policy.deadline);
    if let Some(client) = client {
        budget = budget.min(client);
    }
    ctx.deadline = crate::duration::later(tokio::time::Instant::from_std(ctx.started), budget);
    if tokio::time::Instant::now() >= ctx.deadline {
        // The upload alone used up this route's (shorter) deadline: the client's doing.
        ctx.close_connection = true;
        return Err(body_timeout(budget).into());
    }
    ctx.route = resolved.route;
    ctx.candidates = priced_candidates(gw, resolved.candidates, ctx.model.as_deref())?;
    translatable_candidates(gw, ctx)?;
    ctx.cache_plan = super::cache::plan(gw, session.req_header(), ctx);
    if !ctx.cache_plan.may_serve_stored() {
        // A cached answer needs no provider: only check the chain can be walked otherwise.
        super::attempts::precheck(gw, ctx)?;
    }

    // From here on the client session is wrapped: the body is replayed whole to every attempt
    // (past pingora's 64 KiB buffer) and the response header is held as `downstream` explains.
    let (home, control) = downstream::install(&mut session.downstream_session, ctx.body.clone());
    ctx.body_home = Some(home);
    ctx.hold = Some(control);
    Ok(Prepared::Proxy)
}

/// When some candidate speaks another dialect than the client: decodes the request once into
/// the canonical model, and keeps only the candidates it can be translated for. If none is
/// left, the client gets the 400 that names the field no target can express.
fn translatable_candidates(gw: &GatewayState, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    let client = ctx.dialect;
    let dialect_of = |t: &crate::config::Target| gw.upstreams[t.provider].cfg.dialect;
    if ctx.candidates.iter().all(|t| dialect_of(t) == client) {
        return Ok(());
    }
    let opts = &gw.config.translation;
    let translator = RequestTranslator::new(client, &ctx.body, opts)?;
    let mut first_error = None;
    let mut checked: Vec<(crate::dialect::Dialect, bool)> = Vec::new();
    ctx.candidates.retain(|t| {
        let d = dialect_of(t);
        if d == client {
            return true;
        }
        if let Some((_, ok)) = checked.iter().find(|(c, _)| *c == d) {
            return *ok;
        }
        let ok = match translator.body_for(d, &t.model, opts) {
            Ok(_) => true,
            Err(e) => {
                first_error.get_or_insert(e);
                false
            }
        };
        checked.push((d, ok));
        ok
    });
    if ctx.candidates.is_empty() {
        return Err(first_error.unwrap_or_else(|| GatewayError::bad_request("untranslatable")));
    }
    ctx.translator = Some(std::sync::Arc::new(translator));
    Ok(())
}

/// Under `pricing.unpriced = "reject"` (the default), targets without a price are not
/// served: a call whose cost cannot be known is never recorded as free.
fn priced_candidates(
    gw: &GatewayState,
    candidates: Vec<crate::config::Target>,
    model: Option<&str>,
) -> Result<Vec<crate::config::Target>, GatewayError> {
    use crate::pricing::UnpricedPolicy;
    if gw.config.pricing.unpriced == UnpricedPolicy::RecordUnknown {
        return Ok(candidates);
    }
    let (priced, unpriced): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|t| {
        let p = &gw.upstreams[t.provider].cfg;
        gw.config.pricing.lookup(p, &t.model).is_some()
    });
    if priced.is_empty() {
        let names: Vec<String> = unpriced
            .iter()
            .map(|t| format!("{}/{}", gw.upstreams[t.provider].name(), t.model))
            .collect();
        return Err(GatewayError::bad_request(format!(
            "The model `{}` has no price on this gateway ({}), and unpriced models are refused; \
             add a price (pricing.overrides) or set pricing.unpriced = \"record_unknown\"",
            model.unwrap_or("?"),
            names.join(", ")
        ))
        .with_param("model"));
    }
    Ok(priced)
}

/// The time the client gives the request: `x-switchyard-timeout-ms`, or the OpenAI/Anthropic
/// SDKs' own `x-stainless-timeout` (seconds). The gateway answers a little before it, so the
/// client gets a clean error rather than its own timeout.
fn client_deadline(req: &pingora_http::RequestHeader) -> Option<Duration> {
    let get = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let asked = get("x-switchyard-timeout-ms")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .or_else(|| {
            get("x-stainless-timeout")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
        })?;
    // Beyond what any route may allow anyway: capped, so no arithmetic on it can overflow.
    let asked = asked.min(crate::duration::Bound::Request.max());
    let margin = (asked / 10).min(Duration::from_millis(250));
    Some(asked.saturating_sub(margin))
}

fn body_timeout(budget: Duration) -> GatewayError {
    GatewayError::new(
        ErrorKind::RequestTimeout,
        format!(
            "The request body did not arrive within the request's deadline ({} s)",
            budget.as_secs_f64()
        ),
    )
}

/// Reads the whole request body, bounded by `server.max_body_size`.
async fn read_body(
    gw: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<(), Failure> {
    let limit = gw.config.server.max_body_size;
    let too_large = || {
        GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!("The request body is larger than this gateway's limit of {limit} bytes"),
        )
    };
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large().into());
    }
    let expects_continue = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        session
            .as_downstream_mut()
            .write_continue_response()
            .await
            .map_err(Failure::Io)?;
    }
    session.enable_retry_buffering();
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = session.read_request_body().await.map_err(Failure::Io)? {
        if buf.len() + chunk.len() > limit {
            return Err(too_large().into());
        }
        buf.extend_from_slice(&chunk);
    }
    ctx.body = buf.freeze();
    ctx.body_read = true;
    Ok(())
}
