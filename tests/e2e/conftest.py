"""Real-browser fixtures: `streamlit run serve.py` on a free localhost port, Debian's Chromium, and a watch on
what the browser logs and fetches (no console errors, nothing from outside this server).

Locally a missing Chromium (or playwright) skips these tests with the reason; in CI (``CI`` set) it
fails them, so the browser journey can never be skipped silently there.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from sslcore.runs.eval_manager import EvalJobManager
from sslcore.runs.process_manager import JobManager
from tests.runs.jobs_support import stop_all, stop_all_evaluations

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SSL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
START_TIMEOUT = 90.0


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (bash scripts/setup.sh --tests installs Debian's chromium)"
    return None


def require_browser() -> None:
    """Skip the calling test if Chromium or playwright is missing; in CI, fail it instead."""
    reason = _missing_browser()
    if reason is not None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"real-browser tests cannot run in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium():  # noqa: ANN201 - a playwright Browser
    """A headless Chromium driven by playwright (see require_browser for when it is missing)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer(NamedTuple):
    url: str
    process: subprocess.Popen
    runs_dir: Path
    log: Path


def wait_healthy(server: AppServer, timeout: float = START_TIMEOUT) -> None:
    """Until /_stcore/health answers ok; fails with the server's log if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"streamlit exited with {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit did not become healthy in {timeout:g} s:\n{server.log.read_text()[-3000:]}")


def start_app(tmp_path: Path) -> AppServer:
    """`streamlit run serve.py` as the README runs it, on its own port, runs folder and data folder."""
    port = free_port()
    runs_dir = tmp_path / "runs"
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "SSL_RUNS_DIR": str(runs_dir), "SSL_DATA_ROOT": str(tmp_path / "data"),
           "SSL_MAX_JOBS": "2", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return AppServer(f"http://127.0.0.1:{port}", process, runs_dir, log)


def stop_app(server: AppServer) -> None:
    """Stop the app's training and evaluation workers (their own sessions: nothing else would), then the server."""
    stop_all(JobManager(server.runs_dir))
    stop_all_evaluations(EvalJobManager(server.runs_dir))
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    server = start_app(tmp_path)
    try:
        wait_healthy(server)
        yield server
    finally:
        stop_app(server)


class BrowserWatch:
    """Everything a page logs as an error or fetches from another host, collected while a test runs.

    The app must work offline and quietly: no console error (a failed request is one), no uncaught page
    error, and no request to anything but the app's own server (a data: or blob: URL is not a request).
    """

    LOCAL_SCHEMES = ("data:", "blob:", "about:")

    def __init__(self, page, app_url: str) -> None:  # noqa: ANN001 - a playwright Page
        host = app_url.split("://", 1)[1]
        self.local = (f"http://{host}", f"ws://{host}")
        self.errors: list[str] = []
        self.media_misses: list[str] = []  # see _console
        self.outside: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("request", self._request)

    def _console(self, message) -> None:  # noqa: ANN001 - a playwright ConsoleMessage
        if message.type != "error":
            return
        text = f"{message.text} ({message.location.get('url', '')})"
        # Streamlit's media store drops a picture once a rerun has replaced it; a fetch of the old one still
        # in flight then gets a 404 and the browser logs it (streamlit/streamlit#4825, #1294), while the page
        # goes on to show the new picture. Seen once in CI on a page with live snapshot strips. Kept apart,
        # not counted: only a 404 of this app's own /media/ files, nothing else.
        if f"{self.local[0]}/media/" in text and ("404" in text or "Image source error" in text):
            self.media_misses.append(text)
        else:
            self.errors.append(text)

    def _request(self, request) -> None:  # noqa: ANN001 - a playwright Request
        if not request.url.startswith(self.local + self.LOCAL_SCHEMES):
            self.outside.append(request.url)

    def assert_clean(self) -> None:
        assert not self.outside, f"requests to outside hosts: {sorted(set(self.outside))}"
        assert not self.errors, f"browser console errors: {self.errors}"
