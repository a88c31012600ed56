"""Runs as plain folders on disk (the store) and the processes that train them (the job manager)."""
from sslcore.runs.store import ACTIVE_STATES, FINAL_STATES, Run, RunNotFoundError, RunStore, pid_alive

__all__ = ["ACTIVE_STATES", "FINAL_STATES", "Run", "RunNotFoundError", "RunStore", "pid_alive"]
