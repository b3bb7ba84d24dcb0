//! Routing by path suffix, the `/mock/*` control endpoints, and the per-request pipeline:
//! auth, header overrides, faults, body validation, then the dialect handler.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::Request;
use super::{anthropic, gemini, openai, responses, text};
use super::{Ctx, Dialect, FaultKind, FaultSpec, Reply, State};

/// What the connection should do with a request.
pub(crate) enum Action {
    Reply(Reply),
    /// Never answer.
    Hang,
    /// Close with an RST without answering.
    Reset,
}

/// A provider endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat,
    Embeddings,
    Models,
    Model(String),
    Messages,
    CountTokens,
    Gemini { model: String, stream: bool },
    GeminiEmbed { model: String },
    Images,
    Transcriptions,
    Translations,
    Speech,
    Responses,
}

impl Endpoint {
    fn dialect(&self) -> Dialect {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Dialect::Anthropic,
            Endpoint::Gemini { .. } | Endpoint::GeminiEmbed { .. } => Dialect::Gemini,
            _ => Dialect::OpenAi,
        }
    }

    /// Whether the body must be a JSON object naming a `model`.
    fn needs_model(&self) -> bool {
        matches!(
            self,
            Endpoint::Chat
                | Endpoint::Embeddings
                | Endpoint::Messages
                | Endpoint::CountTokens
                | Endpoint::Images
                | Endpoint::Speech
                | Endpoint::Responses
        )
    }

    /// Whether the body is a multipart form (not JSON).
    fn multipart(&self) -> bool {
        matches!(self, Endpoint::Transcriptions | Endpoint::Translations)
    }
}

/// Maps a method and path to an endpoint, or to the 404/405 reply.
pub(crate) fn route(method: &str, path: &str) -> Result<Endpoint, Reply> {
    let (endpoint, allowed) = if path.ends_with("/chat/completions") {
        (Endpoint::Chat, "POST")
    } else if path.ends_with("/messages/count_tokens") {
        (Endpoint::CountTokens, "POST")
    } else if path.ends_with("/messages") {
        (Endpoint::Messages, "POST")
    } else if path.ends_with("/responses") {
        (Endpoint::Responses, "POST")
    } else if path.ends_with("/embeddings") {
        (Endpoint::Embeddings, "POST")
    } else if path.ends_with("/images/generations") {
        (Endpoint::Images, "POST")
    } else if path.ends_with("/audio/transcriptions") {
        (Endpoint::Transcriptions, "POST")
    } else if path.ends_with("/audio/translations") {
        (Endpoint::Translations, "POST")
    } else if path.ends_with("/audio/speech") {
        (Endpoint::Speech, "POST")
    } else if path.ends_with("/models") {
        (Endpoint::Models, "GET")
    } else if let Some((before, last)) = path.rsplit_once('/') {
        match last.split_once(':') {
            Some((model, action)) if before.ends_with("/models") && !model.is_empty() => {
                let model = model.to_string();
                let endpoint = match action {
                    "generateContent" => Endpoint::Gemini {
                        model,
                        stream: false,
                    },
                    "streamGenerateContent" => Endpoint::Gemini {
                        model,
                        stream: true,
                    },
                    "batchEmbedContents" => Endpoint::GeminiEmbed { model },
                    _ => return Err(not_found(method, path)),
                };
                (endpoint, "POST")
            }
            None if before.ends_with("/models") && !last.is_empty() => {
                (Endpoint::Model(last.to_string()), "GET")
            }
            _ => return Err(not_found(method, path)),
        }
    } else {
        return Err(not_found(method, path));
    };
    if method != allowed {
        let msg = format!("Method {method} not allowed for {path}; use {allowed}");
        let reply = endpoint.dialect().error(405, &msg);
        return Err(reply.with_header("allow", allowed.to_string()));
    }
    Ok(endpoint)
}

fn not_found(method: &str, path: &str) -> Reply {
    let msg = format!("Unknown request URL: {method} {path}. Please check the URL and method.");
    Reply::json(404, &openai::error_json(404, &msg, Some("unknown_url")))
}

/// Handles one request (control or provider).
pub(crate) async fn handle(req: Request, state: &State) -> Action {
    let path = req.path().to_string();
    if path == "/mock" || path.starts_with("/mock/") {
        return Action::Reply(control(&req, &path, state));
    }
    let n = state.record(&path);
    let request_id = format!("mock-{n}");
    let endpoint = match route(&req.method, &path) {
        Ok(e) => e,
        Err(reply) => return Action::Reply(reply.with_header("x-request-id", request_id)),
    };
    let dialect = endpoint.dialect();
    let digest = body_sha256(&req).await;
    let parsed: Option<Result<Value, serde_json::Error>> =
        (req.method == "POST" && !endpoint.multipart()).then(|| serde_json::from_slice(&req.body));
    let body = match &parsed {
        Some(Ok(v)) => Some(v),
        _ => None,
    };
    let form = if endpoint.multipart() {
        Some(super::media::form(&req))
    } else {
        None
    };
    let model = match &endpoint {
        Endpoint::Gemini { model, .. }
        | Endpoint::GeminiEmbed { model }
        | Endpoint::Model(model) => Some(model.clone()),
        _ if form.is_some() => match &form {
            Some(Ok(parts)) => super::media::form_model(parts),
            _ => None,
        },
        _ => body
            .and_then(|b| b.get("model"))
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let (auth_style, auth_ok) = check_auth(&req, &state.opts.expect_keys);

    let mut echo: Vec<(&'static str, String)> = vec![
        ("x-mock-body-bytes", req.body.len().to_string()),
        ("x-mock-body-sha256", digest),
        ("x-mock-auth", auth_style.to_string()),
        ("x-request-id", request_id),
    ];
    if let Some(m) = &model {
        echo.push(("x-mock-model", m.clone()));
    }
    let finish = |mut reply: Reply, echo: Vec<(&'static str, String)>| {
        reply.headers.extend(echo);
        Action::Reply(reply)
    };

    if !auth_ok {
        let msg = match dialect {
            Dialect::OpenAi => "Incorrect API key provided",
            Dialect::Anthropic => "invalid x-api-key",
            Dialect::Gemini => "API key not valid",
        };
        return finish(dialect.error(401, msg), echo);
    }

    let overrides = match Overrides::from_request(&req, state) {
        Ok(o) => o,
        Err(msg) => return finish(dialect.error(400, &msg), echo),
    };
    let fault = match state.choose_fault(req.header("x-mock-fault")) {
        Ok(f) => f,
        Err(msg) => return finish(dialect.error(400, &format!("x-mock-fault: {msg}")), echo),
    };
    let mut ttft = overrides.ttft;
    let mut cut = None;
    match fault {
        FaultKind::None => {}
        FaultKind::Hang => return Action::Hang,
        FaultKind::Reset => return Action::Reset,
        FaultKind::Status {
            code,
            retry_after,
            retry_after_ms,
        } => {
            let msg = fault_message(code);
            let mut reply = dialect.error(code, &msg);
            if let Some(s) = retry_after {
                reply = reply.with_header("retry-after", s.to_string());
            }
            if let Some(ms) = retry_after_ms {
                reply = reply.with_header("retry-after-ms", ms.to_string());
            }
            return finish(reply, echo);
        }
        FaultKind::Slow { ms } => ttft = Duration::from_millis(ms),
        FaultKind::Cut { after } => cut = Some(after),
        FaultKind::Malformed => {
            let stream = is_stream(&endpoint, body);
            let mut reply = match dialect {
                Dialect::OpenAi => openai::malformed(stream),
                Dialect::Anthropic => anthropic::malformed(stream),
                Dialect::Gemini => gemini::malformed(stream, is_sse(&req)),
            };
            reply.ttft = ttft;
            return finish(reply, echo);
        }
    }

    let mut reply = match validate(&endpoint, &parsed) {
        Err(msg) => dialect.error(400, &msg),
        Ok(body) => {
            let ctx = Ctx {
                n,
                model: model.unwrap_or_default(),
                tokens: overrides.tokens,
                cached: overrides.cached,
                cache_write: overrides.cache_write,
                reasoning: overrides.reasoning,
                parallel_tools: overrides.parallel_tools,
                created: text::now_unix(),
            };
            let null = Value::Null;
            let body = body.unwrap_or(&null);
            match &endpoint {
                Endpoint::Chat => openai::chat(&ctx, body),
                Endpoint::Embeddings => openai::embeddings(&ctx, body),
                Endpoint::Models => openai::models(),
                Endpoint::Model(id) => openai::model(id),
                Endpoint::Messages => anthropic::messages(&ctx, body),
                Endpoint::Responses => responses::create(&ctx, body),
                Endpoint::CountTokens => anthropic::count_tokens(body),
                Endpoint::Gemini { stream, .. } => {
                    gemini::generate(&ctx, body, *stream, is_sse(&req))
                }
                Endpoint::GeminiEmbed { .. } => super::media::batch_embed(body),
                Endpoint::Images => super::media::images(&ctx, body),
                Endpoint::Speech => super::media::speech(&ctx, body),
                Endpoint::Transcriptions | Endpoint::Translations => match &form {
                    Some(Ok(parts)) => super::media::transcription(
                        &ctx,
                        &req,
                        parts,
                        endpoint == Endpoint::Translations,
                    ),
                    Some(Err(reply)) => reply.clone_error(),
                    None => dialect.error(400, "multipart body expected"),
                },
            }
        }
    };
    if reply.status == 200 {
        reply.ttft = ttft;
        reply.itl = overrides.itl;
    }
    reply.cut = cut;
    finish(reply, echo)
}

/// Checks that a POST body is a JSON object with a `model` where one is needed.
fn validate<'a>(
    endpoint: &Endpoint,
    parsed: &'a Option<Result<Value, serde_json::Error>>,
) -> Result<Option<&'a Value>, String> {
    match parsed {
        None => Ok(None),
        Some(Err(e)) => Err(format!(
            "We could not parse the JSON body of your request: {e}"
        )),
        Some(Ok(v)) if !v.is_object() => Err("The request body must be a JSON object".into()),
        Some(Ok(v)) => {
            if endpoint.needs_model() && !v.get("model").is_some_and(Value::is_string) {
                return Err("model: Field required (a string naming the model)".into());
            }
            Ok(Some(v))
        }
    }
}

fn is_stream(endpoint: &Endpoint, body: Option<&Value>) -> bool {
    match endpoint {
        Endpoint::Gemini { stream, .. } => *stream,
        _ => body
            .and_then(|b| b.get("stream"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

fn is_sse(req: &Request) -> bool {
    req.query_param("alt")
        .is_some_and(|v| v.eq_ignore_ascii_case("sse"))
}

fn fault_message(code: u16) -> String {
    let what = match code {
        429 => "Rate limit reached for requests",
        500 => "The server had an error while processing your request",
        503 => "The service is temporarily unavailable",
        529 => "Overloaded",
        _ => super::http::reason(code),
    };
    format!("{what} (fault injected by the switchyard mock)")
}

/// Hex SHA-256 of the body; large bodies are hashed off the async worker threads.
async fn body_sha256(req: &Request) -> String {
    if req.body.len() < 1024 * 1024 {
        return text::hex(&Sha256::digest(&req.body));
    }
    let body = req.body.clone();
    match tokio::task::spawn_blocking(move || text::hex(&Sha256::digest(&body))).await {
        Ok(hex) => hex,
        Err(_) => text::hex(&Sha256::digest(&req.body)),
    }
}

/// Which auth style the request used, and whether it is accepted. With keys expected, any
/// presented credential that matches one of them is accepted and its style reported.
fn check_auth(req: &Request, expected: &[String]) -> (&'static str, bool) {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    if let Some(v) = req.header("authorization") {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            found.push(("bearer", v[7..].trim().to_string()));
        }
    }
    if let Some(v) = req.header("x-api-key") {
        found.push(("x-api-key", v.trim().to_string()));
    }
    if let Some(v) = req.header("x-goog-api-key") {
        found.push(("x-goog-api-key", v.trim().to_string()));
    }
    if let Some(v) = req.query_param("key") {
        found.push(("query", v));
    }
    if expected.is_empty() {
        return (found.first().map_or("none", |(s, _)| *s), true);
    }
    match found.iter().find(|(_, k)| expected.iter().any(|e| e == k)) {
        Some((style, _)) => (style, true),
        None => (found.first().map_or("none", |(s, _)| *s), false),
    }
}

/// Per-request settings from `x-mock-*` headers, defaulting to the server options.
struct Overrides {
    ttft: Duration,
    itl: Duration,
    tokens: usize,
    cached: u64,
    cache_write: u64,
    reasoning: u64,
    parallel_tools: bool,
}

/// Most tokens one response may be asked to produce.
const MAX_TOKENS: u64 = 1_000_000;

impl Overrides {
    fn from_request(req: &Request, state: &State) -> Result<Self, String> {
        let num = |name: &str| -> Result<Option<u64>, String> {
            match req.header(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{name}: {v:?} is not a whole number")),
            }
        };
        let opts = &state.opts;
        let tokens = match num("x-mock-tokens")? {
            Some(t) if t > MAX_TOKENS => {
                return Err(format!("x-mock-tokens: at most {MAX_TOKENS}"));
            }
            Some(t) => t as usize,
            None => opts.tokens,
        };
        Ok(Self {
            ttft: num("x-mock-ttft-ms")?.map_or(opts.ttft, Duration::from_millis),
            itl: num("x-mock-itl-ms")?.map_or(opts.itl, Duration::from_millis),
            tokens,
            cached: num("x-mock-cached-tokens")?.unwrap_or(0),
            cache_write: num("x-mock-cache-write-tokens")?.unwrap_or(0),
            reasoning: num("x-mock-reasoning-tokens")?.unwrap_or(0).min(MAX_TOKENS),
            parallel_tools: req
                .header("x-mock-parallel-tools")
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes")),
        })
    }
}

/// `/mock/*`: statistics, reset and scripted faults.
fn control(req: &Request, path: &str, state: &State) -> Reply {
    let err = |status: u16, msg: &str| Dialect::OpenAi.error(status, msg);
    match (req.method.as_str(), path) {
        ("GET", "/mock/stats") => Reply::json(200, &state.stats()),
        ("POST", "/mock/reset") => {
            state.reset();
            Reply::json(200, &json!({"ok": true}))
        }
        ("GET", "/mock/fault") => Reply::json(200, &state.scripted_json()),
        ("DELETE", "/mock/fault") => {
            state.clear_scripted();
            Reply::json(200, &json!({"ok": true}))
        }
        ("POST", "/mock/fault") => {
            let body: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => {
                    return err(
                        400,
                        &format!("body must be JSON like {{\"fault\":\"503\",\"count\":5}}: {e}"),
                    )
                }
            };
            let Some(fault) = body.get("fault").and_then(Value::as_str) else {
                return err(
                    400,
                    "missing string field \"fault\" (e.g. \"503\", \"p=0.5,429\", \"hang\")",
                );
            };
            let spec: FaultSpec = match fault.parse() {
                Ok(s) => s,
                Err(msg) => return err(400, &msg),
            };
            let count = match body.get("count") {
                None | Some(Value::Null) => None,
                Some(c) => match c.as_u64() {
                    Some(c) if c > 0 => Some(c),
                    _ => return err(400, "\"count\" must be a positive whole number or omitted"),
                },
            };
            state.set_scripted(spec, count);
            let mut out = state.scripted_json();
            out["ok"] = json!(true);
            Reply::json(200, &out)
        }
        (_, "/mock/stats" | "/mock/reset" | "/mock/fault") => err(
            405,
            &format!("Method {} not allowed for {path}", req.method),
        ),
        _ => err(
            404,
            &format!("Unknown mock control URL: {} {path}", req.method),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix() {
        let ok = |m: &str, p: &str| route(m, p).ok();
        assert_eq!(
            ok("POST", "/openai/v1/chat/completions"),
            Some(Endpoint::Chat)
        );
        assert_eq!(ok("POST", "/v1/messages"), Some(Endpoint::Messages));
        assert_eq!(
            ok("POST", "/v1/messages/count_tokens"),
            Some(Endpoint::CountTokens)
        );
        assert_eq!(ok("POST", "/x/v1/embeddings"), Some(Endpoint::Embeddings));
        assert_eq!(ok("POST", "/v1/responses"), Some(Endpoint::Responses));
        assert_eq!(ok("GET", "/v1/models"), Some(Endpoint::Models));
        assert_eq!(
            ok("GET", "/v1/models/mock-large"),
            Some(Endpoint::Model("mock-large".into()))
        );
        assert_eq!(
            ok("POST", "/v1beta/models/gemini-pro:streamGenerateContent"),
            Some(Endpoint::Gemini {
                model: "gemini-pro".into(),
                stream: true
            })
        );
        assert_eq!(
            ok("POST", "/g/v1beta/models/g-1.5:generateContent"),
            Some(Endpoint::Gemini {
                model: "g-1.5".into(),
                stream: false
            })
        );
        let status = |m: &str, p: &str| route(m, p).err().map(|r| r.status);
        assert_eq!(status("GET", "/v1/chat/completions"), Some(405));
        assert_eq!(status("POST", "/v1/models"), Some(405));
        assert_eq!(status("POST", "/v1/completions"), Some(404));
        assert_eq!(status("POST", "/v1beta/models/x:countTokens"), Some(404));
        assert_eq!(status("GET", "/"), Some(404));
    }
}
