//! Layer 1: what is being asked, and by whom. Classifies the path (answering `/healthz`,
//! unknown paths and wrong methods at once), authenticates the gateway key, answers
//! `GET /v1/models`, and reads the caller's feature tag.

use super::{Cx, Failure, Flow, Layer};
use crate::auth::presented_key;
use crate::dialect::{Dialect, Endpoint};
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
    Health,
    WrongMethod,
    Unknown,
}

fn classify(method: &Method, path: &str) -> Path {
    let path = path.strip_suffix('/').unwrap_or(path);
    let (endpoint, wants) = match path {
        "/v1/chat/completions" | "/chat/completions" => {
            (Some(Endpoint::ChatCompletions), Method::POST)
        }
        "/v1/messages" => (Some(Endpoint::Messages), Method::POST),
        "/v1/responses" | "/responses" => (Some(Endpoint::Responses), Method::POST),
        "/v1beta/models" => {
            return if *method == Method::GET {
                Path::GeminiModels
            } else {
                Path::WrongMethod
            }
        }
        "/v1/embeddings" | "/embeddings" => (Some(Endpoint::Embeddings), Method::POST),
        "/v1/models" | "/models" => (None, Method::GET),
        "/healthz" => {
            return if method == Method::GET || method == Method::HEAD {
                Path::Health
            } else {
                Path::WrongMethod
            }
        }
        _ => match crate::dialect::gemini::client_path(path) {
            Some((_, false)) => (Some(Endpoint::GenerateContent), Method::POST),
            Some((_, true)) => (Some(Endpoint::StreamGenerateContent), Method::POST),
            None => return Path::Unknown,
        },
    };
    if *method != wants {
        return Path::WrongMethod;
    }
    match endpoint {
        Some(e) => Path::Api(e),
        None => Path::Models,
    }
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
        let Cx { gw, session, ctx } = cx;
        ctx.client.dialect = guess_dialect(session);
        let method = session.req_header().method.clone();
        let classified = classify(&method, session.req_header().uri.path());
        let endpoint = match &classified {
            Path::Health => {
                ctx.downstream.body_read = true;
                respond::json(session, ctx, 200, br#"{"status":"ok"}"#.to_vec(), &[])
                    .await
                    .map_err(Failure::Io)?;
                return Ok(Flow::Answered);
            }
            Path::Unknown => {
                return Err(GatewayError::new(
                    ErrorKind::NotFound,
                    format!(
                        "Unknown request URL: {} {}. Endpoints: POST /v1/chat/completions, POST /v1/messages, POST /v1/responses, POST /v1/embeddings, POST /v1beta/models/{{model}}:generateContent, GET /v1/models",
                        method,
                        session.req_header().uri.path()
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
            Path::Models | Path::GeminiModels => None,
            Path::Api(e) => Some(*e),
        };
        let gemini_models = matches!(classified, Path::GeminiModels);
        // Known from the path: a rejected call to a model endpoint is still a recorded call.
        ctx.client.endpoint = endpoint;

        let key =
            match presented_key(session.req_header()) {
                None => return Err(GatewayError::new(
                    ErrorKind::Unauthorized,
                    "Missing gateway key: send `Authorization: Bearer <key>`, `x-api-key: <key>` or `x-goog-api-key: <key>`",
                )
                .into()),
                Some(k) => gw.keys.authenticate(k).ok_or_else(|| {
                    GatewayError::new(ErrorKind::Unauthorized, "Invalid gateway key")
                })?,
            };
        ctx.client.key_name = Some(key.name.clone());

        let Some(endpoint) = endpoint else {
            ctx.downstream.body_read = true; // GET: no body expected
            let body = if gemini_models {
                models::gemini_list(gw, key)
            } else {
                models::list(gw, key)
            };
            respond::json(session, ctx, 200, body, &[])
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
        Ok(Flow::Continue)
    }
}
