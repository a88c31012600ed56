"""Ending a command-line process without the interpreter's slow teardown.

Once a command's work is done, a normal exit still tears the interpreter down module by module. With torch
(and torch._dynamo, scikit-learn) imported that took 0.9-1.0 s on a 2-core AMD EPYC (measured after the last
file of a `sslcore train` was written, against 0.07 s for this exit): seconds a person waits at the prompt,
and a worker slot held for nothing. Everything a normal exit does that matters is done here first, in its
order: non-daemon threads are joined, atexit handlers (and weakref finalizers) run, stdout and stderr are
flushed; only the freeing of objects that the operating system reclaims anyway is skipped.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with exit status ``code``, as a normal exit would but without the module teardown.

    Only for the entry points of processes (the ``sslcore`` command, the workers it starts), never for code
    that others import and call: it does not return.
    """
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()  # what the interpreter's own shutdown waits for
    atexit._run_exitfuncs()  # the registered handlers, weakref.finalize(atexit=True) callbacks among them
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it either way
            pass
    os._exit(code)
