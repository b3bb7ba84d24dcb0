//! Test harness: starts the real `switchyard` binary (gateway and mock provider) on free
//! loopback ports and stops them when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
pub const GW_KEY: &str = "sk-sy-test-key";
pub const LIMITED_KEY: &str = "sk-sy-limited-key";
pub const PROVIDER_KEY: &str = "sk-mock-provider";

/// A free loopback port, never the same one twice in this test process: tests run in
/// parallel, and two of them handed the same port would talk to each other's gateway (the
/// second bind fails, but the first gateway answers on the port the harness waits for).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A child process killed on drop, with its stderr kept in a file for failure reports.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        Self::spawn_in(None, args, env)
    }

    /// Spawns with `cwd` as the working directory (relative paths such as the default
    /// ledger file land there).
    pub fn spawn_in(cwd: Option<&std::path::Path>, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("stderr.log");
        let out = dir.path().join("stdout.log");
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&log).expect("stderr file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let child = cmd.spawn().expect("spawn switchyard");
        Proc {
            child,
            log,
            _dir: dir,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.log.with_file_name("stdout.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Show what the process said: the test's own message rarely explains a failure.
            eprintln!(
                "--- stderr of {:?} (pid {}) ---\n{}",
                self.log,
                self.child.id(),
                self.stderr()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(port: u16, proc_: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if !proc_.alive() {
            panic!("process exited before listening:\n{}", proc_.stderr());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("port {port} never opened:\n{}", proc_.stderr());
}

pub struct Mock {
    pub port: u16,
    pub proc_: Proc,
}

pub fn start_mock(extra: &[&str]) -> Mock {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["mock", "--listen", &listen, "--expect-key", PROVIDER_KEY];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(&args, &[]);
    wait_for_port(port, &mut p);
    Mock { port, proc_: p }
}

pub struct Gateway {
    pub port: u16,
    pub proc_: Proc,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// The gateway's ledger (the default relative path, in its working directory).
    pub fn ledger_path(&self) -> PathBuf {
        self.config.with_file_name("switchyard-ledger.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The standard test config: providers of both dialects in front of `mock_port`.
pub fn standard_config(gw_port: u16, mock_port: u16, server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{gw_port}"
threads = 2
{server_extra}

[pricing]
unpriced = "record_unknown"

[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:MOCK_KEY"]
models = ["gpt-4o-mini"]

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock_port}/v1"
api_keys = ["env:MOCK_KEY"]

[[providers]]
name = "groq"
kind = "groq"
base_url = "http://127.0.0.1:{mock_port}/openai/v1"
api_keys = ["env:MOCK_KEY"]
models = ["llama-3.3-70b-versatile"]

[[providers]]
name = "gemini"
kind = "gemini-native"
base_url = "http://127.0.0.1:{mock_port}/v1beta"
api_keys = ["env:MOCK_KEY"]

[[providers]]
name = "down"
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"
connect_timeout = "1s"

[[gateway_keys]]
name = "tests"
key = "{GW_KEY}"

[[gateway_keys]]
name = "limited"
key = "{LIMITED_KEY}"
models = ["chat"]

[[routes]]
name = "chat"
targets = ["openai/gpt-4o-mini"]

[[routes]]
name = "claude"
targets = ["anthropic/claude-sonnet-4-5"]

[[routes]]
name = "failover"
targets = ["down/never", "openai/gpt-4o-mini"]
"#
    )
}

pub fn start_gateway_with(config: &str) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, config).expect("write config");
    let port: u16 = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("listen = \"127.0.0.1:"))
        .and_then(|rest| rest.trim_end_matches('"').parse().ok())
        .expect("config has a server.listen on 127.0.0.1");
    let cfg = path.to_string_lossy().to_string();
    let mut p = Proc::spawn_in(
        Some(dir.path()),
        &["serve", "--config", &cfg],
        &[("MOCK_KEY", PROVIDER_KEY)],
    );
    wait_for_port(port, &mut p);
    Gateway {
        port,
        proc_: p,
        config: path,
        _dir: dir,
    }
}

/// Mock + gateway with the standard config.
pub fn start_stack(server_extra: &str) -> (Mock, Gateway) {
    let mock = start_mock(&[]);
    let gw = start_gateway_with(&standard_config(free_port(), mock.port, server_extra));
    (mock, gw)
}

/// A raw HTTP/1.1 response read off a socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one response (Content-Length or chunked) from a keep-alive connection.
pub fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read header");
        assert!(
            n > 0,
            "connection closed while reading headers: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut resp = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = resp.header("content-length") {
        let mut body = vec![0u8; len.parse().unwrap()];
        stream.read_exact(&mut body).expect("read body");
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream.read_exact(&mut byte).expect("chunk size");
                line.push(byte[0]);
            }
            let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..size]);
        }
    }
    resp
}

/// Sends one request on `stream` and reads the response.
pub fn roundtrip(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    read_response(stream)
}

pub fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(gw.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// The attempts listed in `x-switchyard-attempts` (`provider/model#key=outcome(ms)`, ...).
pub fn attempts(r: &RawResponse) -> Vec<String> {
    r.header("x-switchyard-attempts")
        .map(|h| h.split(", ").map(str::to_owned).collect())
        .unwrap_or_default()
}

pub fn bearer() -> String {
    format!("Bearer {GW_KEY}")
}

pub fn chat_body(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": stream,
    })
    .to_string()
}
