//! Layer 1: what is being asked, and by whom. Classifies the path (answering `/healthz`,
//! unknown paths and wrong methods at once), authenticates the gateway key, answers
//! `GET /v1/models`, and reads the caller's feature tag.

use super::{Cx, Failure, Flow, Layer};
use crate::auth::{presented_gateway_key, Refused};
use crate::dialect::{Dialect, Endpoint};
use crate::endpoints::Found;
use crate::error::{ErrorKind, GatewayError};
use crate::proxy::{models, respond};
use http::Method;
use pingora_proxy::Session;

#[derive(Default)]
pub struct Auth;

/// What a request path is.
enum Path {
    Api(Endpoint),
    Models,
    /// `GET /v1beta/models`: the model list in Gemini's shape.
    GeminiModels,
    /// `POST /v1/feedback` (experiments).
    Feedback,
    Health,
    WrongMethod,
    Unknown,
}

/// Health and the model list here; model endpoints from the endpoint table.
fn classify(method: &Method, path: &str) -> Path {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    match trimmed {
        "/healthz" if method == Method::GET || method == Method::HEAD => return Path::Health,
        "/v1/models" | "/models" if method == Method::GET => return Path::Models,
        "/v1beta/models" if method == Method::GET => return Path::GeminiModels,
        "/v1/feedback" if method == Method::POST => return Path::Feedback,
        "/healthz" | "/v1/models" | "/models" | "/v1beta/models" | "/v1/feedback" => {
            return Path::WrongMethod
        }
        _ => {}
    }
    match crate::endpoints::classify(method.as_str(), path) {
        Found::Endpoint(spec) => Path::Api(spec.endpoint),
        Found::WrongMethod(_) => Path::WrongMethod,
        Found::Unknown => Path::Unknown,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The dialect to answer in before the endpoint is known: Anthropic's SDK sends
/// `anthropic-version` on every request, Gemini clients call `/v1beta/...` or name a model
/// in the path, with their key in `x-goog-api-key`.
fn guess_dialect(session: &Session) -> Dialect {
    let req = session.req_header();
    let path = req.uri.path();
    if path.starts_with("/v1/messages") || req.headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else if path.starts_with("/v1beta/")
        || req.headers.contains_key("x-goog-api-key")
        || crate::dialect::gemini::client_path(path).is_some()
    {
        Dialect::Gemini
    } else {
        Dialect::OpenAi
    }
}

impl Layer for Auth {
    async fn on_request(&self, cx: &mut Cx<'_>) -> Result<Flow, Failure> {
        let Cx {
            gw, session, ctx, ..
        } = cx;
        ctx.client.dialect = guess_dialect(session);
        let method = session.req_header().method.clone();
        let path_kind = classify(&method, session.req_header().uri.path());
        let endpoint = match &path_kind {
            Path::Health => {
                ctx.downstream.body_read = true;
                Box::pin(respond::json(
                    session,
                    ctx,
                    200,
                    br#"{"status":"ok"}"#.to_vec(),
                    &[],
                ))
                .await
                .map_err(Failure::Io)?;
                return Ok(Flow::Answered);
            }
            Path::Unknown => {
                return Err(GatewayError::new(
                    ErrorKind::NotFound,
                    format!(
                        "Unknown request URL: {} {}. Endpoints: {}, GET /v1/models, \
                         GET /v1beta/models",
                        method,
                        session.req_header().uri.path(),
                        crate::endpoints::listing()
                    ),
                )
                .into())
            }
            Path::WrongMethod => {
                return Err(GatewayError::new(
                    ErrorKind::MethodNotAllowed,
                    format!(
                        "Method {method} is not allowed on {}",
                        session.req_header().uri.path()
                    ),
                )
                .into())
            }
            Path::Models | Path::GeminiModels | Path::Feedback => None,
            Path::Api(e) => Some(*e),
        };
        let gemini_models = matches!(path_kind, Path::GeminiModels);
        let feedback = matches!(path_kind, Path::Feedback);
        // Known from the path: a rejected call to a model endpoint is still a recorded call.
        ctx.client.endpoint = endpoint;

        let key =
            match presented_gateway_key(session.req_header()) {
                None => return Err(GatewayError::new(
                    ErrorKind::Unauthorized,
                    "Missing gateway key: send `Authorization: Bearer <key>`, `x-api-key: <key>` or `x-goog-api-key: <key>`",
                )
                .into()),
                Some(k) => gw.keys.check(k, now_ms()).map_err(|why| {
                    GatewayError::new(
                        ErrorKind::Unauthorized,
                        match why {
                            Refused::Invalid => "Invalid gateway key",
                            Refused::Expired => "This gateway key has expired",
                        },
                    )
                })?,
            };
        ctx.client.key_name = Some(key.name.clone());
        if feedback {
            let name = key.name.clone();
            // Rare paths are boxed so they do not size every request's future.
            return Box::pin(super::experiments::feedback(cx, &name)).await;
        }

        let Some(endpoint) = endpoint else {
            ctx.downstream.body_read = true; // GET: no body expected
            let body = if gemini_models {
                models::gemini_list(gw, &key)
            } else {
                models::list(gw, &key)
            };
            Box::pin(respond::json(session, ctx, 200, body, &[]))
                .await
                .map_err(Failure::Io)?;
            return Ok(Flow::Answered);
        };
        ctx.client.dialect = endpoint.dialect();
        ctx.client.feature = session
            .req_header()
            .headers
            .get("x-switchyard-feature")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().chars().take(64).collect::<String>())
            .filter(|v| !v.is_empty());
        ctx.client.key = Some(key);
        Ok(Flow::Continue)
    }
}
