"""Fixtures for the switchyard SDK end-to-end suite.

One mock provider (`switchyard mock`) and one gateway (`switchyard serve`) are started per
pytest session on free loopback ports; every test talks to the gateway through the official
`openai` / `anthropic` Python SDKs.  Both processes log to temp files whose tails are attached
to the report of any failing test.

Environment:
  SWITCHYARD_BIN   binary under test (default: target/debug/switchyard, relative to the repo root)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from sdk_helpers import (
    CLIENT_TIMEOUT_S,
    GATEWAY_KEY,
    LIMITED_KEY,
    PROVIDER_KEY,
    PROVIDER_KEY_ENV,
    REPO_ROOT,
    gateway_config,
)

STARTUP_TIMEOUT_S = 20.0

# Everything here talks to loopback only; never route it through a proxy from the environment.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))

# Every process started by the fixtures, so failing tests can show their logs.
_PROCESSES: list["ManagedProcess"] = []


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def switchyard_bin() -> Path:
    raw = os.environ.get("SWITCHYARD_BIN", "target/debug/switchyard")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def free_ports(n: int) -> list[int]:
    """Ask the kernel for n distinct free loopback ports (sockets held open until all are picked)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, max_bytes: int = 16_000) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:  # pragma: no cover - diagnostics only
        return f"<cannot read {path}: {e}>"
    if len(data) > max_bytes:
        data = b"...[truncated]...\n" + data[-max_bytes:]
    return data.decode("utf-8", "replace")


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.name}.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.stderr.log"

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.env)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env=env,
            cwd=str(self.log_dir),
            start_new_session=True,  # own process group: teardown kills any children too
        )
        _PROCESSES.append(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        out = _tail(self.stdout_path).strip()
        err = _tail(self.stderr_path).strip()
        parts = [f"$ {' '.join(self.argv)}"]
        if self.proc is not None and self.proc.poll() is not None:
            parts.append(f"[exited with code {self.proc.returncode}]")
        parts.append(f"--- stderr ---\n{err or '<empty>'}")
        if out:
            parts.append(f"--- stdout ---\n{out}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self._out.close()
        self._err.close()
        if self in _PROCESSES:
            _PROCESSES.remove(self)


def _wait_until(proc: ManagedProcess, probe, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_err = "no attempt yet"
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(
                f"{proc.name} exited before {what}\n{proc.logs()}", pytrace=False
            )
        try:
            ok, detail = probe()
            if ok:
                return
            last_err = detail
        except Exception as e:  # connection refused etc. while starting
            last_err = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    pytest.fail(
        f"{proc.name} did not become ready ({what}) within {STARTUP_TIMEOUT_S:.0f}s; "
        f"last probe: {last_err}\n{proc.logs()}",
        pytrace=False,
    )


def _tcp_probe(port: int):
    def probe():
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True, "connected"

    return probe


def _healthz_probe(port: int):
    def probe():
        with httpx.Client(trust_env=False, timeout=1.0) as c:
            r = c.get(f"http://127.0.0.1:{port}/healthz")
        return r.status_code == 200, f"GET /healthz -> {r.status_code} {r.text[:200]!r}"

    return probe


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@dataclass
class Mock:
    port: int
    process: ManagedProcess


@dataclass
class Gateway:
    port: int
    config_path: Path
    process: ManagedProcess
    mock: Mock

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture(scope="session")
def sy_bin() -> Path:
    path = switchyard_bin()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"switchyard binary not found or not executable: {path}\n"
            "Build it with `cargo build` or point SWITCHYARD_BIN at it.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="switchyard-sdk-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def ports() -> tuple[int, int]:
    gw, mock = free_ports(2)
    return gw, mock


@pytest.fixture(scope="session")
def mock_provider(sy_bin: Path, workdir: Path, ports) -> Mock:
    _, mock_port = ports
    proc = ManagedProcess(
        name="mock",
        argv=[
            str(sy_bin),
            "mock",
            "--listen",
            f"127.0.0.1:{mock_port}",
            "--expect-key",
            PROVIDER_KEY,
        ],
        log_dir=workdir,
    )
    proc.start()
    try:
        _wait_until(proc, _tcp_probe(mock_port), f"accepting connections on 127.0.0.1:{mock_port}")
        yield Mock(port=mock_port, process=proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def gateway(sy_bin: Path, workdir: Path, ports, mock_provider: Mock) -> Gateway:
    gw_port, mock_port = ports
    cfg = workdir / "switchyard.toml"
    cfg.write_text(gateway_config(gw_port, mock_port))
    proc = ManagedProcess(
        name="gateway",
        argv=[str(sy_bin), "serve", "--config", str(cfg)],
        log_dir=workdir,
        env={PROVIDER_KEY_ENV: PROVIDER_KEY},
    )
    proc.start()
    try:
        _wait_until(proc, _healthz_probe(gw_port), f"GET /healthz == 200 on port {gw_port}")
        yield Gateway(port=gw_port, config_path=cfg, process=proc, mock=mock_provider)
    finally:
        proc.stop()


# ---- SDK clients ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_openai(gateway: Gateway):
    clients = []

    def make(api_key: str = GATEWAY_KEY, **kw) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", CLIENT_TIMEOUT_S)
        c = openai.OpenAI(base_url=gateway.openai_base_url, api_key=api_key, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="session")
def make_anthropic(gateway: Gateway):
    clients = []

    def make(api_key: str = GATEWAY_KEY, **kw) -> anthropic.Anthropic:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", CLIENT_TIMEOUT_S)
        c = anthropic.Anthropic(base_url=gateway.url, api_key=api_key, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="session")
def oai(make_openai) -> openai.OpenAI:
    return make_openai()


@pytest.fixture(scope="session")
def ant(make_anthropic) -> anthropic.Anthropic:
    return make_anthropic()


# --------------------------------------------------------------------------------------------
# reporting: attach process logs to failing tests
# --------------------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for p in list(_PROCESSES):
            report.sections.append((f"switchyard {p.name} log", p.logs()))
