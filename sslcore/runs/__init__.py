"""Runs as plain folders on disk (the store) and the processes that train them (the job manager)."""
from sslcore.runs.liveness import pid_alive
from sslcore.runs.store import ACTIVE_STATES, DAMAGED, FINAL_STATES, Run, RunNotFoundError, RunStore

__all__ = ["ACTIVE_STATES", "DAMAGED", "FINAL_STATES", "Run", "RunNotFoundError", "RunStore", "pid_alive"]
