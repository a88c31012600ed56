"""The dashboard's three figures, measured in a real browser against `streamlit run serve.py` (README).

1. Cold start: from launching the server until the home page is interactive (Quick demo clickable).
2. Click Train -> the first loss point on the live chart (default recipe: mnist5k + SimCLR), with the
   worker's own milestones from the run folder.
3. CPU use of the app server process while a browser watches the run (polling cost), against the same
   process with nobody watching.

    python benchmarks/bench_app.py                           # about 2 minutes
    python benchmarks/bench_app.py --smoke                   # the same steps with short samples
    python benchmarks/bench_app.py --screenshot docs/train.png   # also save the Train page mid-run

Needs Chromium (Debian's package, /usr/bin/chromium) and playwright. Runs in a temporary runs folder.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled
from sslcore.runs import Run, RunStore  # noqa: E402
from sslcore.runs.process_manager import JobManager  # noqa: E402

CHROMIUM = os.environ.get("SSL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
LOSS_POINTS_JS = """() => {
  const frame = document.querySelector('iframe[src*="live_charts"]');
  const chart = frame && frame.contentDocument && frame.contentDocument.getElementById('chart-loss');
  return chart && chart.data ? chart.data[0].x.length : 0;
}"""
KNN_POINTS_JS = LOSS_POINTS_JS.replace("chart-loss", "chart-knn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SSL_RUNS_DIR": str(runs_dir), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"streamlit not healthy after {timeout:g} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` itself (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def cpu_percent(pid: int, seconds: float) -> float:
    """Average CPU use of ``pid`` over ``seconds``, in percent of one core."""
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


def wait_for(page, js: str, minimum: int, timeout: float) -> float:  # noqa: ANN001 - a playwright Page
    """Poll ``js`` in the page until it returns >= ``minimum``; returns the time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(js) >= minimum:
            return time.time()
        time.sleep(0.05)
    raise RuntimeError(f"{js[:40]}... stayed below {minimum} for {timeout:g} s")


def milestones(run: Run, clicked: float) -> str:
    """When the worker started training and logged its first records, in seconds after the click."""
    status, records = run.status(), run.metrics()
    epoch0 = next((r["time"] for r in records if r.get("kind") == "epoch"), None)
    step1 = next((r["time"] for r in records if r.get("kind") == "step"), None)
    parts = [f"run created {status['created'] - clicked:.1f} s", f"worker training {status['started'] - clicked:.1f} s"]
    if epoch0 is not None:
        parts.append(f"untrained epoch-0 evaluation logged {epoch0 - clicked:.1f} s")
    if step1 is not None:
        parts.append(f"first step done {step1 - clicked:.1f} s")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short CPU samples (a quick check that it all works)")
    parser.add_argument("--screenshot", type=Path, help="save the Train page here once the run is 2 epochs in")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
    try:
        measure(tmp, sample_s=10.0 if args.smoke else 20.0, screenshot=args.screenshot)
    except BaseException:
        print(f"the app's log and runs folder are kept for a look: {tmp}", file=sys.stderr)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # each run leaves 10-20 MB of runs and log otherwise
    return 0


def measure(tmp: Path, sample_s: float, screenshot: Path | None) -> None:
    """Start the app in ``tmp``, open it in Chromium, click Train and print the figures."""
    from playwright.sync_api import sync_playwright

    runs_dir, port = tmp / "runs", free_port()
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        launched = time.time()
        server = start_server(runs_dir, port, tmp / "streamlit.log")
        try:
            wait_healthy(url, server)
            healthy = time.time()
            page.goto(url)
            page.get_by_role("button", name="Quick demo").wait_for(state="visible", timeout=120_000)
            interactive = time.time()
            print(f"cold start: server healthy after {healthy - launched:.1f} s, "
                  f"home page interactive after {interactive - launched:.1f} s")

            page.goto(f"{url}/train")
            train = page.get_by_role("button", name="Train", exact=True)
            train.wait_for(state="visible", timeout=180_000)
            print(f"Train page (first visit: imports torch, loads the dataset, builds the preview) ready "
                  f"after {time.time() - interactive:.1f} s")
            clicked = time.time()
            train.click()
            first_point = wait_for(page, LOSS_POINTS_JS, 1, timeout=300)
            run = RunStore(runs_dir).list()[0]
            print(f"click Train -> first loss point on the chart: {first_point - clicked:.1f} s "
                  f"({milestones(run, clicked)})")

            worker = run.status()["pid"]
            watching = cpu_percent(server.pid, sample_s)
            worker_cpu = cpu_percent(worker, 2.0)
            page.goto("about:blank")
            unwatched = cpu_percent(server.pid, sample_s)
            print(f"app server CPU while a browser watches the run: {watching:.1f}% of one core over {sample_s:g} s "
                  f"(nobody watching: {unwatched:.1f}%); the training worker: {worker_cpu:.0f}%")

            if screenshot:
                page.goto(f"{url}/train?run={run.id}")
                wait_for(page, KNN_POINTS_JS, 3, timeout=600)  # epochs 0, 1 and 2 on the k-NN chart
                time.sleep(2.0)  # one more poll, so every panel shows the same moment
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                print(f"screenshot of the Train page mid-run: {screenshot}")
        finally:
            manager = JobManager(runs_dir)
            for run in manager.store.list():
                if run.is_alive():
                    manager.cancel(run)
                    manager.wait(run, timeout=60)
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            browser.close()


if __name__ == "__main__":
    sys.exit(main())
