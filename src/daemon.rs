//! `serve --daemon`: detach into the background before any thread starts (a fork keeps only
//! the forking thread), and let the command that started the daemon report whether it came up.
//!
//! The starting process waits on a socket pair until the daemon says it is ready (then exits
//! 0) or the daemon's end closes without a word (it failed: exit 1; its error went to the
//! shared stderr). The daemon writes its pid file once it is ready; when it takes over from a
//! running daemon (`--upgrade`) it says "ready" before waiting for the sockets, since the
//! old daemon only hands them over on SIGQUIT, and writes the pid file once it has them, so
//! until then the file still names the process to send that SIGQUIT to.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the starting command waits for the daemon to report.
const READY_WAIT: Duration = Duration::from_secs(120);

/// The daemon's side: its report channel and its pid file.
pub struct Daemon {
    report: Option<UnixStream>,
    pid_file: PathBuf,
}

/// Forks into the background. Returns in the daemon; the calling process waits for the
/// daemon's report and exits. The daemon stays in the current directory (relative paths in
/// the config keep their meaning) and keeps stdout and stderr.
pub fn detach(pid_file: &Path) -> Result<Daemon, String> {
    let (starter_end, daemon_end) =
        UnixStream::pair().map_err(|e| format!("cannot daemonize: {e}"))?;
    let cwd = std::env::current_dir().map_err(|e| format!("cannot daemonize: {e}"))?;
    let fork = daemonix::Daemonize::new()
        .working_directory(cwd)
        .umask(0o027)
        .stdout(daemonix::Stdio::keep())
        .stderr(daemonix::Stdio::keep());
    match fork.execute() {
        daemonix::Outcome::Parent(Ok(_)) => {
            drop(daemon_end);
            std::process::exit(wait_for_report(starter_end))
        }
        daemonix::Outcome::Parent(Err(e)) => Err(format!("cannot daemonize: {e}")),
        daemonix::Outcome::Child(Ok(_)) => {
            drop(starter_end);
            Ok(Daemon {
                report: Some(daemon_end),
                pid_file: pid_file.to_owned(),
            })
        }
        daemonix::Outcome::Child(Err(e)) => Err(format!("cannot daemonize: {e}")),
    }
}

/// The starting process: 0 once the daemon reports ready, 1 if it goes away first.
fn wait_for_report(mut from_daemon: UnixStream) -> i32 {
    let _ = from_daemon.set_read_timeout(Some(READY_WAIT));
    let mut said = String::new();
    let _ = from_daemon.read_to_string(&mut said);
    if said.starts_with("ready") {
        0
    } else {
        eprintln!("switchyard: the daemon did not start (its error, if any, is above)");
        1
    }
}

impl Drop for Daemon {
    /// A daemon that fails to start returns its error, which is printed after this value is
    /// gone: the report socket stays open until the process exits, so the starting command
    /// sees its end close only after that error is on the shared stderr.
    fn drop(&mut self) {
        if let Some(s) = self.report.take() {
            std::mem::forget(s);
        }
    }
}

impl Daemon {
    /// Tells the starting command that the daemon is up; it exits 0. Once only.
    pub fn report_ready(&mut self) {
        if let Some(mut s) = self.report.take() {
            let _ = s.write_all(b"ready\n");
        }
    }

    /// Writes this process's id to the pid file, replacing (atomically) any earlier one.
    pub fn write_pid_file(&self) -> Result<(), String> {
        let mut tmp = self.pid_file.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&tmp, &self.pid_file))
            .map_err(|e| format!("cannot write the pid file {}: {e}", self.pid_file.display()))
    }
}
