//! `serve --daemon`: the command returns at once, the daemon writes its pid file, serves, and
//! records every call in the ledger. A fork keeps only the forking thread, so this also checks
//! that the ledger writer (started on its own thread) runs in the daemon: it did not when
//! pingora forked after start-up, and every row was lost. Then a binary upgrade between two
//! daemons: `serve --upgrade --daemon` takes the sockets over and the pid file.

mod common;
use common::*;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchyard::ledger;

/// Kills the daemon if the test ends before it has stopped it.
struct Daemon(Option<i32>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn running(pid: i32) -> bool {
    // A zombie has no fds and is not "running" for this test.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn daemon_detaches_writes_its_pid_serves_and_records_calls() {
    let mock = start_mock(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("switchyard.pid");
    let port = free_port();
    let config = standard_config(
        port,
        mock.port,
        &format!(
            "pid_file = \"{}\"\ngrace_period = \"1s\"",
            pid_file.display()
        ),
    );
    let config_path = dir.path().join("switchyard.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.path().join("daemon.log");

    let started = Instant::now();
    let status = Command::new(BIN)
        .args(["serve", "--daemon", "--config"])
        .arg(&config_path)
        .current_dir(dir.path())
        .env("MOCK_KEY", PROVIDER_KEY)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("daemon.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .expect("run serve --daemon");
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "serve --daemon failed: {}", logged());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "serve --daemon did not return promptly"
    );

    // The pid file names a live process other than the one that returned.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no pid file: {}", logged());
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut guard = Daemon(Some(pid));
    assert!(running(pid), "the daemon is not running: {}", logged());
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "never listened: {}", logged());
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &bearer()),
            ("content-type", "application/json"),
        ],
        chat_body("openai/gpt-4o-mini", false).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let request_id = r
        .header("x-switchyard-request-id")
        .expect("request id")
        .to_owned();
    drop(s);

    // The row reaches the ledger: the writer thread exists in the daemon. Relative paths keep
    // their meaning: the default ledger lands in the directory the daemon was started from.
    let ledger_path = dir.path().join("switchyard-ledger.db");
    let row = loop {
        if let Ok(Some(row)) = ledger::read_row(&ledger_path, &request_id) {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "no ledger row for {request_id}: {}",
            logged()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(row.status, 200);
    assert_eq!(row.model.as_deref(), Some("gpt-4o-mini"));

    // SIGTERM stops it within the grace period.
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop: {}",
            logged()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    guard.0 = None;
}

/// Runs `serve --daemon [extra]` in `dir`; the command itself must return promptly and 0.
fn run_daemon(dir: &std::path::Path, config: &std::path::Path, extra: &[&str], log: &str) {
    let started = Instant::now();
    let log = dir.join(log);
    let status = Command::new(BIN)
        .args(["serve", "--daemon", "--config"])
        .arg(config)
        .args(extra)
        .current_dir(dir)
        .env("MOCK_KEY", PROVIDER_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .expect("run serve --daemon");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "serve --daemon {extra:?} failed: {logged}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{logged}");
}

/// Waits for `pid_file` to name a running process other than `not`.
fn wait_pid(pid_file: &std::path::Path, not: Option<i32>) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| Some(*p) != not && running(*p)) {
            return pid;
        }
        assert!(Instant::now() < deadline, "no new pid in {pid_file:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn chat_status(port: u16) -> u16 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &bearer()),
            ("content-type", "application/json"),
        ],
        chat_body("openai/gpt-4o-mini", false).as_bytes(),
    )
    .status
}

#[test]
fn a_daemon_hands_its_sockets_and_pid_file_to_an_upgraded_daemon() {
    let mock = start_mock(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sy.pid");
    let port = free_port();
    let config = standard_config(
        port,
        mock.port,
        &format!(
            "pid_file = \"{}\"\nupgrade_sock = \"{}\"\ngrace_period = \"1s\"",
            pid_file.display(),
            dir.path().join("up.sock").display()
        ),
    );
    let config_path = dir.path().join("switchyard.toml");
    std::fs::write(&config_path, config).unwrap();

    run_daemon(dir.path(), &config_path, &[], "old.log");
    let old = wait_pid(&pid_file, None);
    let mut old_guard = Daemon(Some(old));
    let deadline = Instant::now() + Duration::from_secs(30);
    while chat_status(port) != 200 {
        assert!(Instant::now() < deadline, "the first daemon never served");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The new daemon moves the old pid file aside (the old daemon holds its lock), writes its
    // own, and waits for the sockets; SIGQUIT makes the old one hand them over.
    run_daemon(dir.path(), &config_path, &["--upgrade"], "new.log");
    let new = wait_pid(&pid_file, Some(old));
    let mut new_guard = Daemon(Some(new));
    assert!(Command::new("kill")
        .args(["-QUIT", &old.to_string()])
        .status()
        .unwrap()
        .success());

    // Requests keep being answered while the old daemon drains and exits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut served = 0;
    while running(old) {
        assert!(Instant::now() < deadline, "the old daemon did not exit");
        assert_eq!(
            chat_status(port),
            200,
            "a request failed during the handover"
        );
        served += 1;
    }
    old_guard.0 = None;
    assert!(served > 0);
    for _ in 0..5 {
        assert_eq!(chat_status(port), 200);
    }
    assert!(running(new), "the new daemon is not running");
    assert_eq!(wait_pid(&pid_file, Some(old)), new);

    assert!(Command::new("kill")
        .args(["-TERM", &new.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(new) {
        assert!(Instant::now() < deadline, "the new daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    new_guard.0 = None;
}
