"""What earlier runs measured on this machine, for honest estimates before a run starts.

A promise like "about half a minute" is a guess about someone else's computer; the wall time of the same
recipe's last completed run here is a measurement. Once a run trains, its own pace takes over (the ETA in
its heartbeat, see ``TrainState.eta_seconds``).
"""
from __future__ import annotations

from typing import NamedTuple

from sslcore.config import RunConfig
from sslcore.runs.store import RunStore

#: How many of the newest runs are searched for a measurement (the Home page asks on every visit).
SEARCHED_RUNS = 50


class Measured(NamedTuple):
    """The wall time of one completed run of a recipe, and that run's id."""

    seconds: float
    run_id: str


def last_duration(store: RunStore, config: RunConfig) -> Measured | None:
    """Start-to-end wall time of the newest completed run with exactly ``config`` (None if there is none).

    Unreadable run files are skipped: a damaged folder must not take an estimate down with it.
    """
    wanted = config.to_dict()
    for run in store.list()[:SEARCHED_RUNS]:
        try:
            status = run.status()
            if status.get("state") != "completed" or run.config_dict() != wanted:
                continue
            started, ended = float(status["started"]), float(status["ended"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if ended > started:
            return Measured(ended - started, run.id)
    return None
