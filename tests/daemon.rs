//! `serve --daemon`: the command returns at once, the daemon writes its pid file, serves, and
//! records every call in the ledger. A fork keeps only the forking thread, so this also checks
//! that the ledger writer (started on its own thread) runs in the daemon: it did not when
//! pingora forked after start-up, and every row was lost. A daemon that fails to start makes the
//! command fail. Then a binary upgrade between two daemons: `serve --upgrade --daemon` takes
//! the sockets over and the pid file.

mod common;
use common::*;
use std::net::TcpStream;
use std::path::PathBuf;
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
    let (dir, config_path, pid_file, port) = daemon_config(mock.port);

    run_daemon(dir.path(), &config_path, &[], "daemon.log");
    // The pid file names a live process other than the one that returned.
    let pid = wait_pid(&pid_file, None);
    let mut guard = Daemon(Some(pid));
    let r = wait_served(port);
    let request_id = r
        .header("x-switchyard-request-id")
        .expect("request id")
        .to_owned();

    // The row reaches the ledger: the writer thread exists in the daemon. Relative paths keep
    // their meaning: the default ledger lands in the directory the daemon was started from.
    let ledger_path = dir.path().join("switchyard-ledger.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    let row = loop {
        if let Ok(Some(row)) = ledger::read_row(&ledger_path, &request_id) {
            break row;
        }
        assert!(Instant::now() < deadline, "no ledger row for {request_id}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(row.status, 200);
    assert_eq!(row.model.as_deref(), Some("gpt-4o-mini"));
    // The access line reaches the daemon's stdout: its writer thread, too, runs in the daemon.
    let access = dir.path().join("daemon.out");
    while !std::fs::read_to_string(&access)
        .unwrap_or_default()
        .contains(&request_id)
    {
        assert!(Instant::now() < deadline, "no access line for {request_id}");
        std::thread::sleep(Duration::from_millis(50));
    }

    stop(pid, "-TERM");
    guard.0 = None;
}

/// A config in a new directory: the standard providers in front of `mock_port`, a pid file
/// and an upgrade socket of its own, a 1 s grace period.
fn daemon_config(mock_port: u16) -> (tempfile::TempDir, PathBuf, PathBuf, u16) {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sy.pid");
    let port = free_port();
    let config = standard_config(
        port,
        mock_port,
        &format!(
            "pid_file = \"{}\"\nupgrade_sock = \"{}\"\ngrace_period = \"1s\"",
            pid_file.display(),
            dir.path().join("up.sock").display()
        ),
    );
    let config_path = dir.path().join("switchyard.toml");
    std::fs::write(&config_path, config).unwrap();
    (dir, config_path, pid_file, port)
}

/// Retries a chat request until the daemon answers it with 200; returns that answer.
fn wait_served(port: u16) -> RawResponse {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = chat(port).filter(|r| r.status == 200) {
            return r;
        }
        assert!(Instant::now() < deadline, "the daemon never served");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to `pid` and waits (20 s at most) for it to exit.
fn stop(pid: i32, signal: &str) {
    assert!(Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} did not exit on {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
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

/// One chat request on a new connection; `None` if the port refuses it.
fn chat(port: u16) -> Option<RawResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &bearer()),
            ("content-type", "application/json"),
        ],
        chat_body("openai/gpt-4o-mini", false).as_bytes(),
    ))
}

fn chat_status(port: u16) -> u16 {
    chat(port).map_or(0, |r| r.status)
}

#[test]
fn a_daemon_hands_its_sockets_and_pid_file_to_an_upgraded_daemon() {
    let mock = start_mock(&[]);
    let (dir, config_path, pid_file, port) = daemon_config(mock.port);

    run_daemon(dir.path(), &config_path, &[], "old.log");
    let old = wait_pid(&pid_file, None);
    let mut old_guard = Daemon(Some(old));
    wait_served(port);

    // The new daemon's command returns at once: the new daemon waits for the sockets, which
    // the old one hands over on SIGQUIT. Until then the pid file names the old one, the
    // process to send that SIGQUIT to.
    run_daemon(dir.path(), &config_path, &["--upgrade"], "new.log");
    let named = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(named.trim(), old.to_string());
    assert!(Command::new("kill")
        .args(["-QUIT", &old.to_string()])
        .status()
        .unwrap()
        .success());
    let new = wait_pid(&pid_file, Some(old));
    let mut new_guard = Daemon(Some(new));

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

    stop(new, "-TERM");
    new_guard.0 = None;
}

#[test]
fn a_daemon_that_fails_after_the_fork_makes_the_command_fail() {
    let mock = start_mock(&[]);
    let (dir, config_path, pid_file, _port) = daemon_config(mock.port);
    // The ledger is opened in the daemon, after the fork: a file where its directory should be
    // makes that fail.
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let mut config = std::fs::read_to_string(&config_path).unwrap();
    config.push_str("\n[ledger]\npath = \"not-a-dir/ledger.db\"\n");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.path().join("failed.log");
    let status = Command::new(BIN)
        .args(["serve", "--daemon", "--config"])
        .arg(&config_path)
        .current_dir(dir.path())
        .env("MOCK_KEY", PROVIDER_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .expect("run serve --daemon");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "exit 0 for a daemon that died: {logged}");
    assert!(logged.contains("cannot open the ledger"), "{logged}");
    assert!(logged.contains("the daemon did not start"), "{logged}");
    assert!(!pid_file.exists(), "a pid file for a daemon that never ran");
}
