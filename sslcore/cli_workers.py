"""``sslcore worker | rank | eval-worker``: the internal entry points of the processes the job managers start
(no help lines on purpose: people run train, resume and eval)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sslcore.cli_eval import parse_budgets, parse_methods
from sslcore.runs import Run


def cmd_worker(args: argparse.Namespace) -> int:
    """Entry point of a job-manager process: wait for a slot, then train (or resume) the run."""
    from sslcore.runs.process_manager import run_worker

    return run_worker(Path(args.run_dir), resume=args.resume, slots=args.slots, threads=args.threads,
                      processes=args.processes)


def cmd_rank(args: argparse.Namespace) -> int:
    """Entry point of one process of a run trained by several (started by torchrun for a job-manager worker)."""
    from sslcore import distributed
    from sslcore.engine.training_run import execute_run

    run = Run(Path(args.run_dir))
    outcome = execute_run(run, resume=args.resume, console=sys.stdout if distributed.env_world().is_main else None,
                          threads=args.threads)
    return 1 if outcome == "failed" else 0  # torchrun takes any other exit code for a crash of the whole run


def cmd_eval_worker(args: argparse.Namespace) -> int:
    """Entry point of an evaluation job's process (started by sslcore.runs.eval_manager.EvalJobManager)."""
    import json

    from sslcore.runs.eval_manager import EvalRequest
    from sslcore.runs.eval_worker import run_eval_worker

    methods = parse_methods(args.methods)
    request = EvalRequest(tuple(parse_budgets(args.budgets)), args.repeats, args.seed,
                          EvalRequest.methods if methods is None else tuple(methods), json.loads(args.supervised),
                          args.force)
    return run_eval_worker(Path(args.run_dir), request.checked(), slots=args.slots)


def add_worker_commands(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker")  # the job manager's process
    worker.add_argument("run_dir")
    worker.add_argument("--resume", action="store_true")
    worker.add_argument("--slots", type=int, default=2)
    worker.add_argument("--threads", type=int, default=0)
    worker.add_argument("--processes", type=int, default=1)
    worker.set_defaults(func=cmd_worker)

    rank = sub.add_parser("rank")  # one of a worker's torchrun processes
    rank.add_argument("run_dir")
    rank.add_argument("--resume", action="store_true")
    rank.add_argument("--threads", type=int, default=0)
    rank.set_defaults(func=cmd_rank)

    eval_worker = sub.add_parser("eval-worker")  # an evaluation job's process
    eval_worker.add_argument("run_dir")
    eval_worker.add_argument("--budgets", default="1,4,10,100,all")
    eval_worker.add_argument("--repeats", type=int, default=3)
    eval_worker.add_argument("--seed", type=int, default=0)
    eval_worker.add_argument("--methods")
    eval_worker.add_argument("--supervised", default="{}", help="overrides of the supervised baseline, as JSON")
    eval_worker.add_argument("--slots", type=int, default=2)
    eval_worker.add_argument("--force", action="store_true")
    eval_worker.set_defaults(func=cmd_eval_worker)
