"""Evaluate: how few labels do the self-supervised features need? The label-efficiency protocol, per run.

Pick a run (``?run=<id>``) and, to compare, more runs; press Evaluate to queue a background job per run
(linear probe, k-NN, the supervised baseline, raw pixels and optionally fine-tuning, on the same labelled
subsets). The page draws what the run folders hold: the label-efficiency curve, a verdict, the table
(CSV download), the confusion matrix of a method at a budget, and the protocol in plain words.
"""
from __future__ import annotations

import streamlit as st

from sslcore.evaluation.encoder_source import weights_path
from sslcore.runs import DAMAGED
from ui import evaluate_results as results
from ui.evaluate_charts import label_efficiency_figure
from ui.evaluate_confusion import confusion_section
from ui.evaluate_controls import budget_problem, jobs_panel, settings_form, start_jobs
from ui.plain_text import escape_markdown
from ui.runs import find_run, run_label, run_picker
from ui.runs_damaged import damaged_notice, damaged_panel
from ui.server import job_manager

store = job_manager().store

st.title("Evaluate")
st.caption("Do the self-supervised features pay off? Each method learns from the same few labels; the test split "
           "only scores them.")

damaged_notice(store, key="evaluate")
run = run_picker(store, newest_by_default=True)
if run is None:
    st.info("Choose a run to evaluate, or train one on the **Train** page first.")
    st.stop()
if damaged_panel(run, key="evaluate.run"):
    st.stop()

others = {r.id: r for r in store.list() if r.id != run.id and r.state != DAMAGED}
compare = st.multiselect("Compare with", list(others), format_func=lambda i: run_label(others[i]),
                         key="evaluate.compare", placeholder="Other runs to overlay (e.g. other pretext tasks)")
chosen = [run] + [find_run(store, i) for i in compare if i in others]


def has_weights(r) -> bool:  # noqa: ANN001 - a Run
    try:
        weights_path(r)
    except FileNotFoundError:
        return False
    return True


ready = [r for r in chosen if has_weights(r)]
if len(ready) < len(chosen):
    st.warning("Not evaluable yet (no trained weights): "
               + escape_markdown(", ".join(r.id for r in chosen if r not in ready)))
for r, problem in [(r, budget_problem(r, [])) for r in ready]:  # no labels (the user's images), or no data here
    if problem:
        st.info(escape_markdown(problem), icon=":material/label_off:")
        ready.remove(r)
if ready and (request := settings_form(ready)) is not None:
    start_jobs(ready, request)  # the panel below sees the new jobs and polls them
jobs_panel(chosen)

evaluated = [e for e in (results.evaluated(r) for r in chosen) if e is not None]
if not evaluated:
    st.info("No results yet: press **Evaluate**. The results are saved in the run folder and reused while "
            "neither the weights nor the settings change.")
    st.stop()

st.subheader("Label efficiency")
for line in results.verdict_lines(evaluated):
    st.markdown(f":material/gavel: {line}")
curves, ticks = results.efficiency_curves(evaluated)
revision = "-".join(e.run_id for e in evaluated)
st.plotly_chart(label_efficiency_figure(curves, ticks, revision=revision), config={"displaylogo": False},
                key="evaluate.efficiency")
if len({e.results["protocol"].get("dataset", {}).get("dataset") for e in evaluated}) > 1:
    st.warning("These runs use different datasets: their curves are not directly comparable, and the dashed "
               "baselines belong to the first run's data.")

st.dataframe(results.results_table(evaluated), hide_index=True)
for e in evaluated:
    st.caption(f"{escape_markdown(e.label)}: {results.request_of(e.results)}")
st.download_button("Download all repeats (CSV)", results.results_csv(evaluated), file_name="evaluation.csv",
                   mime="text/csv", icon=":material/download:", on_click="ignore")

main = next((e for e in evaluated if e.run_id == run.id), None)
if main is not None:
    st.subheader("Where it goes wrong")
    confusion_section(run, main)
st.markdown(results.protocol_paragraph(evaluated[0].results))
