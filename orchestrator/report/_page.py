"""The report's HTML page: one file, plotly's JavaScript inside it, readable from file://."""

from __future__ import annotations

import html
import json

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.offline import get_plotlyjs

from orchestrator.reading import WorkerNames, scores, trial_note

__all__ = ["page"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .sub { color: #666; margin-top: 0; }
section { margin: 2rem 0; } pre { background: #f4f4f4; padding: 0.8rem; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; } th, td { padding: 0.3rem 0.6rem; }
th { cursor: pointer; background: #eee; position: sticky; top: 0; }
tr:nth-child(even) { background: #fafafa; }
"""
# Click a header to sort by it (numbers as numbers); a second click reverses.
_SORT = """
const headers = document.querySelectorAll("table.trials th");
headers.forEach((th, column) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
  const key = r => { const t = r.cells[column].dataset.v ?? r.cells[column].textContent;
                     const n = parseFloat(t); return isNaN(n) ? t : n; };
  const dir = th.dataset.dir = th.dataset.dir === "asc" ? "desc" : "asc";
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (dir === "asc" ? 1 : -1));
  rows.forEach(r => body.appendChild(r));
}));
"""


def page(
    study: optuna.Study,
    figures: dict[str, go.Figure],
    best: list[FrozenTrial],
    retrain: list[str],
    *,
    summary: str,
    metrics: tuple[str, ...],
) -> str:
    """The whole page; ``retrain`` holds one command per trial of ``best``."""
    sections = [
        f'<section class="figure"><h2>{html.escape(title)}</h2>'
        f"{figure.to_html(full_html=False, include_plotlyjs=False, div_id=f'figure-{i}')}</section>"
        for i, (title, figure) in enumerate(figures.items())
    ]
    name = html.escape(study.study_name)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hpo report: {name}</title>"
        f"<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{name}</h1><p class='sub'>{html.escape(summary)}</p>"
        f"{_best(best, retrain, metrics)}{''.join(sections)}{_table(study, metrics)}"
        f"<script>{_SORT}</script></body></html>"
    )


def _best(best: list[FrozenTrial], retrain: list[str], metrics: tuple[str, ...]) -> str:
    if not best:
        return "<section><h2>best trial</h2><p>no trial completed yet</p></section>"
    entries = []
    for trial, command in zip(best, retrain, strict=True):
        params = html.escape(json.dumps(trial.params, indent=2, sort_keys=True))
        entries.append(
            f"<h3>trial {trial.number}: {html.escape(scores(metrics, trial.values))}</h3>"
            f"<pre>{params}</pre><p>retrain it:</p><pre>{html.escape(command)}</pre>"
        )
    title = "best trial" if len(metrics) == 1 else f"Pareto front: {len(best)} trials"
    return f"<section id='best'><h2>{title}</h2>{''.join(entries)}</section>"


def _table(study: optuna.Study, metrics: tuple[str, ...]) -> str:
    columns = ("number", "state", *metrics, "duration (s)", "worker", "params", "note")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in columns)
    rows = []
    trials = study.get_trials(deepcopy=False)
    worker_name = WorkerNames(trials)
    for trial in sorted(trials, key=lambda t: t.number):
        values = [f"{v:.6g}" for v in trial.values] if trial.values else [""] * len(metrics)
        duration = f"{trial.duration.total_seconds():.1f}" if trial.duration else ""
        params = html.escape(json.dumps(trial.params, sort_keys=True))
        cells = [str(trial.number), trial.state.name, *values, duration]
        cells += [html.escape(worker_name(trial)), params, html.escape(trial_note(trial))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        "<section><h2>all trials</h2><table class='trials'>"
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )
