"""The report's HTML page: one file, plotly's JavaScript inside it, readable from file://."""

from __future__ import annotations

import html
import json

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.offline import get_plotlyjs

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
    retrain: str | None,
    summary: str,
) -> str:
    """The whole page."""
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
        f"{_best(best, retrain)}{''.join(sections)}{_table(study)}"
        f"<script>{_SORT}</script></body></html>"
    )


def _best(best: list[FrozenTrial], retrain: str | None) -> str:
    if not best:
        return "<section><h2>best trial</h2><p>no trial completed yet</p></section>"
    trial = best[0]
    params = html.escape(json.dumps(trial.params, indent=2, sort_keys=True))
    command = f"<p>retrain it:</p><pre>{html.escape(retrain)}</pre>" if retrain else ""
    return (
        f"<section id='best'><h2>best trial: {trial.number}, value "
        f"{', '.join(f'{v:.4g}' for v in trial.values)}</h2>"
        f"<pre>{params}</pre>{command}</section>"
    )


def _table(study: optuna.Study) -> str:
    header = "".join(
        f"<th>{h}</th>" for h in ("number", "state", "value", "duration (s)", "worker", "params")
    )
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        value = "" if not trial.values else f"{trial.values[0]:.6g}"
        duration = f"{trial.duration.total_seconds():.1f}" if trial.duration else ""
        params = html.escape(json.dumps(trial.params, sort_keys=True))
        cells = [str(trial.number), trial.state.name, value, duration]
        cells += [str(trial.user_attrs.get("worker", "")), params]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        "<section><h2>all trials</h2><table class='trials'>"
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )
