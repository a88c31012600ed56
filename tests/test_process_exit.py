"""The prompt process exit: everything a normal exit finishes is finished, then the process ends at once."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import atexit, sys, threading, time, weakref
    from pathlib import Path
    from sslcore.process_exit import exit_without_teardown

    out = Path(sys.argv[1])

    def slow_write():  # a non-daemon thread still writing when the exit is asked for
        time.sleep(0.3)
        (out / "thread.txt").write_text("done")

    class Holder:
        pass

    holder = Holder()
    weakref.finalize(holder, (out / "finalizer.txt").write_text, "ran")
    atexit.register((out / "atexit.txt").write_text, "ran")
    threading.Thread(target=slow_write).start()
    sys.stdout.write("buffered, no newline")
    exit_without_teardown(7)
    (out / "after.txt").write_text("must not happen")
""")


def test_exit_finishes_threads_handlers_and_output_then_ends_with_the_code(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 7, result.stderr
    assert result.stdout == "buffered, no newline"
    assert (tmp_path / "thread.txt").read_text() == "done"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "finalizer.txt").read_text() == "ran"
    assert not (tmp_path / "after.txt").exists()


def test_the_command_exits_with_main_s_status_and_its_output(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    listing = subprocess.run([sys.executable, "-m", "sslcore", "tasks"], capture_output=True, text=True, cwd=ROOT,
                             env=env, timeout=120)
    assert listing.returncode == 0 and "simclr" in listing.stdout
    bad = subprocess.run([sys.executable, "-m", "sslcore", "train", "--epochs", "-1", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert bad.returncode == 2 and "train.epochs" in bad.stderr
