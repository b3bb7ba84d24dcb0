//! Helpers shared by the mock provider's integration tests: starting a mock inside the test's
//! runtime, reqwest shorthands, SSE parsing, and a small HTTPS client (tokio-rustls, trusting
//! the test CA in `tests/fixtures/tls`) for the mock's TLS mode.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard::mock::{serve, MockOptions, MockTls};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

pub async fn start(opts: MockOptions) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, opts));
    format!("http://{addr}")
}

pub async fn start_default() -> String {
    start(MockOptions::default()).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub fn chat_body(stream: bool) -> Value {
    json!({"model": "mock-large", "stream": stream, "messages": [{"role": "user", "content": "Say hello to the mock."}]})
}

/// Sends `method url` on `c` with an optional JSON body and extra headers.
pub async fn call(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = c.request(method, url);
    if let Some(b) = body {
        req = req.json(b);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("send")
}

/// POST with a JSON body on a fresh client.
pub async fn post(url: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    call(&client(), "POST", url, Some(body), headers).await
}

/// POST on a fresh client and parse the JSON answer.
pub async fn post_json(url: &str, body: &Value, headers: &[(&str, &str)]) -> Value {
    json_body(post(url, body, headers).await).await
}

pub async fn json_body(r: reqwest::Response) -> Value {
    r.json().await.expect("json body")
}

pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `(event name, data)` pairs of an SSE body (`event:` is empty when absent).
pub fn sse(body: &str) -> Vec<(String, String)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_string();
                }
            }
            (name, data)
        })
        .collect()
}

pub fn json_of(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("bad JSON {data:?}: {e}"))
}

pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file in `tests/fixtures/tls`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// The test server identity: `server.pem` (signed by `ca.pem`) and its key.
pub fn server_tls() -> MockTls {
    MockTls::from_pem_files(fixture("server.pem"), fixture("server.key")).expect("server identity")
}

/// Starts a TLS mock on a free loopback port; returns its `127.0.0.1:PORT`.
pub async fn start_tls(opts: MockOptions) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let opts = MockOptions {
        tls: Some(server_tls()),
        ..opts
    };
    tokio::spawn(serve(listener, opts));
    addr.to_string()
}

/// A TLS client that trusts only the certificates in the fixture `roots` (e.g. `ca.pem`) and
/// offers ALPN `http/1.1`.
pub fn tls_connector(roots: &str) -> TlsConnector {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture(roots)).expect("roots file") {
        store
            .add(cert.expect("root PEM"))
            .expect("root certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Connects to `addr` over TLS, asking for (and verifying) `server_name`.
pub async fn tls_connect(
    connector: &TlsConnector,
    addr: &str,
    server_name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).expect("server name");
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("handshake in time")
}

/// A response read off a raw connection.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body was framed by `transfer-encoding: chunked`.
    pub chunked: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Writes one HTTP/1.1 request (`Host: localhost`, `Content-Length` framing).
pub async fn write_request<S: AsyncWrite + Unpin>(
    stream: &mut S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await?;
    stream.flush().await
}

async fn line<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> std::io::Result<String> {
    let mut buf = Vec::new();
    stream.read_until(b'\n', &mut buf).await?;
    if !buf.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete line {:?}", String::from_utf8_lossy(&buf)),
        ));
    }
    buf.truncate(buf.len() - 2);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Reads one response (`Content-Length` or chunked body). An error means the connection
/// failed or ended before the response was complete.
pub async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<Raw> {
    let status_line = line(stream).await?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let l = line(stream).await?;
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("header line");
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut resp = Raw {
        status,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if let Some(len) = resp.header("content-length") {
        let mut body = vec![0u8; len.parse().expect("content-length")];
        stream.read_exact(&mut body).await?;
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        resp.chunked = true;
        loop {
            let size = line(stream).await?;
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .expect("chunk size");
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(resp)
}

/// One request and its response on a kept-alive connection, failing the test on an error.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    write_request(stream.get_mut(), method, path, headers, body)
        .await
        .expect("write request");
    tokio::time::timeout(Duration::from_secs(10), read_response(stream))
        .await
        .expect("response in time")
        .expect("read response")
}

/// `POST /v1/chat/completions` with [`chat_body`] on a kept-alive connection.
pub async fn chat_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    headers: &[(&str, &str)],
    streamed: bool,
) -> Raw {
    let body = chat_bytes(streamed);
    exchange(stream, "POST", "/v1/chat/completions", headers, &body).await
}

/// A chat completion request body as bytes.
pub fn chat_bytes(stream: bool) -> Vec<u8> {
    serde_json::to_vec(&chat_body(stream)).expect("json")
}

/// The data lines of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    sse(body).into_iter().map(|(_, d)| d).collect()
}
