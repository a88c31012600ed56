"""The Evaluate page's results: which runs have results, their curves, table, CSV, verdict and protocol.

Everything here reads ``<run>/eval.json`` through ``sslcore.runs.eval_results`` (cached by the file's
modification time and size) and turns it into figures and tables; nothing computes an evaluation. Run names
are people's text: they are escaped wherever Markdown shows them.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from sslcore.evaluation.baseline_fits import kept_count
from sslcore.evaluation.results import fits, method_label, repeat_rows, score_text
from sslcore.evaluation.shared_baselines import BASELINES, Evaluated, with_shared_baselines
from sslcore.evaluation.verdict import ranking, task_name, verdict
from sslcore.runs import Run
from sslcore.runs.eval_results import EVAL_FILE, read_eval_results
from sslcore.runs.files import DamagedFileError
from ui.evaluate_charts import METHOD_COLORS, RUN_COLORS, Curve, budget_x
from ui.plain_text import escape_markdown


def eval_stamp(run: Run) -> tuple[int, int] | None:
    """(mtime ns, size) of the run's eval.json, or None if it has none: the cache key for reading it."""
    try:
        stat = (run.path / EVAL_FILE).stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


@st.cache_data(max_entries=64, show_spinner=False)
def _read_eval(run_path: str, mtime_ns: int, size: int) -> dict[str, Any] | None:
    # mtime_ns and size are only the cache key. A damaged file reads as "no results": the page's damaged-runs
    # note says why, and evaluating again replaces it.
    try:
        results = read_eval_results(Path(run_path))
    except DamagedFileError:
        return None
    return results.data if results is not None and results.rows else None


def evaluated(run: Run) -> Evaluated | None:
    """The run's stored results, or None if it was never evaluated (or eval.json is damaged)."""
    stamp = eval_stamp(run)
    results = None if stamp is None else _read_eval(str(run.path), *stamp)
    if results is None:
        return None
    task = run.config_dict().get("task", {}).get("name", "?")
    return Evaluated(run.id, f"{task_name(task)} · {run.status().get('name', run.id)}", task, results)


def _rows(e: Evaluated) -> dict[tuple[str, Any], dict[str, Any]]:
    return {(r["method"], r["labels_per_class"]): r for r in e.results["results"]}


def _budget_xs(e: Evaluated) -> dict[Any, float]:
    p = e.results.get("protocol", {})
    train_size, classes = p.get("train_size", 0), p.get("num_classes") or 10
    return {b: budget_x(b, train_size, classes) for b in p.get("budgets", [])}


def _curve(e: Evaluated, method: str, name: str, color: str, dash: str = "solid") -> Curve:
    rows, xs = _rows(e), _budget_xs(e)
    budgets = sorted((b for b in xs if (method, b) in rows), key=xs.__getitem__)
    return Curve(name, color, [xs[b] for b in budgets], [rows[(method, b)]["accuracy_mean"] for b in budgets],
                 [None if fits(rows[(method, b)]) == 1 else rows[(method, b)]["accuracy_std"] for b in budgets], dash)


def efficiency_curves(runs: Sequence[Evaluated]) -> tuple[list[Curve], list[tuple[float, str]]]:
    """The label-efficiency chart's curves and x ticks.

    One run: a curve per evaluated method. Several: each run's linear-probe curve in its own colour,
    plus the first run's baselines (supervised, raw pixels) dashed.
    """
    if not runs:
        return [], []
    if len(runs) == 1:
        methods = list(dict.fromkeys(r["method"] for r in runs[0].results["results"]))
        curves = [_curve(runs[0], m, method_label(m), METHOD_COLORS.get(m, "#495057")) for m in methods]
    else:
        curves = [_curve(e, "linear_probe", f"{e.label} · linear probe", RUN_COLORS[i % len(RUN_COLORS)])
                  for i, e in enumerate(runs)]
        curves += [_curve(runs[0], m, method_label(m), METHOD_COLORS[m], dash="dash") for m in BASELINES]
    ticks: dict[float, str] = {}
    for e in runs:
        for budget, x in _budget_xs(e).items():
            ticks.setdefault(x, "all" if budget == "all" else str(budget))
    return [c for c in curves if c.x], sorted(ticks.items())


def results_table(runs: Sequence[Evaluated]) -> pd.DataFrame:
    """Rows = (run,) labels per class; columns = methods; cells 'mean ± std' in % test accuracy ('mean' alone
    from a single repeat, which has no spread)."""
    records = []
    for e in runs:
        by_budget: dict[Any, dict[str, str]] = {}
        for r in e.results["results"]:
            by_budget.setdefault(r["labels_per_class"], {})[method_label(r["method"])] = score_text(r)
        for budget, cells in by_budget.items():
            records.append({"run": e.label, "labels per class": str(budget), **cells})
    table = pd.DataFrame(records).fillna("—")  # a method this run was not evaluated with
    return table.drop(columns="run") if len(runs) == 1 and not table.empty else table


def rows_so_far_table(job: dict[str, Any]) -> pd.DataFrame | None:
    """A running evaluation's finished rows (eval_job.json's ``rows``) laid out as the results table: rows =
    the requested labels per class, columns = the requested methods, '…' where a method has not finished that
    budget yet. None before the first row. A row without its figures (a hand-edited or foreign file) is
    skipped rather than breaking the page."""
    needed = {"method", "labels_per_class", "accuracy_mean", "accuracy_std"}
    rows = [r for r in job.get("rows") or [] if isinstance(r, dict) and needed <= r.keys()]
    if not rows:
        return None
    request = job.get("request") or {}
    budgets = request.get("budgets") or list(dict.fromkeys(r["labels_per_class"] for r in rows))
    methods = request.get("methods") or list(dict.fromkeys(r["method"] for r in rows))
    done = {(r["method"], r["labels_per_class"]): score_text(r) for r in rows}
    return pd.DataFrame([{"labels per class": str(b), **{method_label(m): done.get((m, b), "…") for m in methods}}
                         for b in budgets])


def results_csv(runs: Sequence[Evaluated]) -> str:
    """Every repeat of every method and budget, one row each (accuracy as a fraction), for download."""
    return pd.DataFrame([row for e in runs for row in repeat_rows(e.results)]).to_csv(index=False)


def verdict_lines(runs: Sequence[Evaluated]) -> list[str]:
    """The verdict of each run (prefixed by its label when there are several) and, if useful, a ranking."""
    if len(runs) == 1:
        return verdict(runs[0].results["results"], runs[0].task)
    lines = []
    for e in runs:
        rows, lender = with_shared_baselines(e, runs)
        note = f" _(baselines of {escape_markdown(lender)}: the same labelled images)_" if lender else ""
        lines.append(f"**{escape_markdown(e.label)}**: " + " ".join(verdict(rows, e.task)) + note)
    budgets = [b for b in runs[0].results.get("protocol", {}).get("budgets", []) if b != "all"]
    if budgets:
        rank = ranking([(escape_markdown(e.label), e.results["results"]) for e in runs], min(budgets))
        if rank:
            lines.append(rank)
    return lines


def protocol_paragraph(results: dict[str, Any]) -> str:
    """The evaluation protocol in one short paragraph, with this evaluation's numbers."""
    p = results.get("protocol", {})
    sup = p.get("supervised", {})
    seeds = [str(s) for s in p.get("subset_seeds", [])]
    repeats = p.get("repeats", "?")
    subsets = "one labelled subset is" if repeats == 1 else f"{repeats} labelled subsets are"
    table = bool({"raw_columns", "gradient_boosting"} & set(p.get("methods", [])))
    unit = "rows" if table else "images"
    raw = ("logistic regression and gradient-boosted trees on the raw columns" if table else "the raw-pixel baseline")
    return (f"**Protocol.** For each budget, {subsets} drawn from the {p.get('train_size', '?'):,} training "
            f"{unit} (stratified: the same number per class; seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}), "
            f"and every method is fitted on exactly the same labelled {unit}: the linear probe (logistic "
            f"regression on the frozen, standardised features), k-NN (cosine, weighted vote) and {raw} on those "
            f"{unit} only; the supervised baseline (the same encoder trained from scratch) and "
            f"fine-tuning train for up to {sup.get('max_steps', '?')} steps with early stopping on a held-out "
            f"{sup.get('holdout_fraction', 0.2):.0%} of the same labelled subset (a fixed "
            f"{sup.get('steps_without_holdout', '?')} steps when a class has a single label)"
            f"{_bf16_clause(results)}. The "
            f"{p.get('test_size', '?'):,} test {unit} are used only for the final score, never for training, early "
            "stopping or choosing hyperparameters. " + _spread_sentence(repeats) + _kept_sentence(results))


def _bf16_clause(results: dict[str, Any]) -> str:
    """Says that the networks trained in bf16 autocast, where the evaluation recorded it (GPUs with bf16, CPUs with
    native bf16)."""
    if results.get("environment", {}).get("network_precision") != "bf16":
        return ""
    return ", in bf16 autocast"


def _kept_sentence(results: dict[str, Any]) -> str:
    """Says how many baseline fits were read back from an earlier evaluation on the same data, if any."""
    kept = kept_count(results)
    if not kept:
        return ""
    return (f" {kept} baseline fit{'s were' if kept > 1 else ' was'} read back from an earlier evaluation on the same "
            "data, subsets and settings (baselines never see the run's features, so they are the same fits); "
            "`sslcore eval RUN --force` makes them afresh.")


def _spread_sentence(repeats: Any) -> str:
    if repeats == 1:
        return ("With one repeat, each score comes from a single draw of labelled data and has no spread: "
                "a difference between methods may be luck of the draw.")
    return "Scores are mean ± standard deviation over the repeats."


def request_of(results: dict[str, Any]) -> str:
    """'budgets 1, 4, all · 3 repeats · seed 0 · linear probe, k-NN' for a caption."""
    p = results.get("protocol", {})
    methods = ", ".join(method_label(m) for m in p.get("methods", []))
    repeats = p.get("repeats", "?")
    budgets = ", ".join(str(b) for b in p.get("budgets", []))
    return (f"budgets {budgets} · {repeats} repeat{'' if repeats == 1 else 's'} · "
            f"seed {p.get('seed', '?')} · {methods}")
