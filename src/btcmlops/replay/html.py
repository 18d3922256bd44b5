"""The backtest as one self-contained HTML page: plotly.js inlined, no network needed.

Three pictures: the price with the policy's champion changes and drift alarms marked on it;
the rolling accuracy of every policy over the trailing week with its 95 % band; and every
alarm and champion change on one timeline, a row per kind. Above them the same table the terminal
shows.
"""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from btcmlops.replay.policies import BASELINES, POLICIES, Evaluation
from btcmlops.replay.report import versus_text
from btcmlops.replay.statistics import ROLLING_HOURS, rolling_accuracy

COLOURS = {
    "adaptive": "#1f77b4",
    "static": "#7f7f7f",
    "weekly": "#ff7f0e",
    "majority": "#2ca02c",
    "last_hour": "#9467bd",
}
MARKERS = {
    "deploy": ("triangle-up", "#2ca02c"),
    "promote": ("triangle-up", "#2ca02c"),
    "fallback": ("diamond", "#bcbd22"),
    "rollback": ("triangle-down", "#d62728"),
    "auto_rollback": ("triangle-down", "#d62728"),
    "drift low": ("circle-open", "#9e9e9e"),
    "drift medium": ("circle-open", "#ff7f0e"),
    "drift high": ("circle", "#d62728"),
    "sequential alarm": ("star", "#9467bd"),
}
# The price chart marks these; the timeline below it shows every kind.
ON_PRICE = ("drift medium", "drift high", "sequential alarm")


def write_html(evaluation: Evaluation, report: dict[str, Any], path: Path) -> None:
    """Write the report to ``path`` (its folder must exist)."""
    figures = [_price(evaluation), _rolling(evaluation), _alarms(evaluation)]
    parts = [
        figure.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False)
        for i, figure in enumerate(figures)
    ]
    last_day = report["end"] - timedelta(hours=1)
    title = f"btcmlops backtest {report['start']:%Y-%m-%d} to {last_day:%Y-%m-%d}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.note {{ color: #666; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{report["hours"]} hours replayed through the service's own jobs in {report["seconds"]:.0f} s;
models see {html.escape(report["models_see"])}; feature set {html.escape(report["feature_set"])},
model type {html.escape(report["model_type"])}, {report["warm_days"]} warm-up days.
{
        "<strong>Interrupted</strong>: the numbers cover the hours replayed."
        if report["interrupted"]
        else ""
    }</p>
{_table(report)}
<p class="note">The last column is the adaptive policy's accuracy minus the other's on the
hours both predicted, with the p-value of a batch-means test (hours are not independent);
* marks p &lt; 0.05.</p>
{"".join(f'<p class="note">note: {html.escape(note)}</p>' for note in report["notes"])}
{"".join(parts)}
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def _table(report: dict[str, Any]) -> str:
    head = (
        "<tr><th>policy</th><th>accuracy</th><th>95% interval</th><th>predictions</th>"
        "<th>log loss</th><th>retrainings</th><th>deployments</th><th>rollbacks</th>"
        "<th>adaptive minus it (p)</th></tr>"
    )
    rows = []
    for name, row in [*report["policies"].items(), *report["baselines"].items()]:
        paired = row.get("adaptive_against_it")
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        interval = (
            "-" if row["accuracy_ci"] is None else "{:.3f} to {:.3f}".format(*row["accuracy_ci"])
        )
        log_loss = "-" if row["log_loss"] is None else f"{row['log_loss']:.4f}"
        versus = versus_text(paired)
        cells = [
            name,
            accuracy,
            interval,
            str(row["predictions"]),
            log_loss,
            str(row.get("retrainings", "-")),
            str(row.get("deployments", "-")),
            str(row.get("rollbacks", "-")),
            versus,
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _price(evaluation: Evaluation) -> go.Figure:
    closes = evaluation.closes
    figure = go.Figure(
        go.Scatter(
            x=closes.index, y=closes.to_numpy(), name="close", line={"color": "#444", "width": 1}
        )
    )
    by_kind: dict[str, list[Any]] = {}
    for event in evaluation.timeline:
        if event["version"] is not None or event["kind"] in ON_PRICE:
            by_kind.setdefault(str(event["kind"]), []).append(event)
    for kind, events in by_kind.items():
        symbol, colour = MARKERS.get(kind, ("x", "#000"))
        hours = [event["at"] for event in events]
        prices = closes.reindex(hours, method="nearest") if len(closes) else []
        figure.add_trace(
            go.Scatter(
                x=hours,
                y=list(prices),
                mode="markers",
                name=kind,
                marker={"symbol": symbol, "color": colour, "size": 10},
                text=[str(event.get("reason") or event.get("version") or kind) for event in events],
                hoverinfo="x+text",
            )
        )
    figure.update_layout(
        title="Price, with the adaptive policy's champion changes and drift alarms",
        height=420,
        margin={"t": 50, "b": 30},
    )
    return figure


def _rolling(evaluation: Evaluation) -> go.Figure:
    figure = go.Figure()
    for name in (*POLICIES, *BASELINES):
        right = evaluation.right(name)
        if right.empty:
            continue
        frame = rolling_accuracy(right)
        colour = COLOURS[name]
        figure.add_trace(
            go.Scatter(
                x=list(frame.index) + list(frame.index[::-1]),
                y=list(frame["high"]) + list(frame["low"][::-1]),
                fill="toself",
                fillcolor=colour,
                opacity=0.12,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=name,
            )
        )
        figure.add_trace(
            go.Scatter(
                x=frame.index,
                y=frame["accuracy"],
                name=name,
                line={"color": colour, "width": 1.5},
                legendgroup=name,
            )
        )
    figure.add_hline(y=0.5, line={"dash": "dot", "color": "#999"})
    figure.update_layout(
        title=f"Accuracy over the trailing {ROLLING_HOURS} hours, with 95% bands",
        yaxis={"title": "accuracy"},
        height=420,
        margin={"t": 50, "b": 30},
    )
    return figure


def _alarms(evaluation: Evaluation) -> go.Figure:
    """Every event of the adaptive policy on one time axis, a row per kind."""
    figure = go.Figure()
    kinds = sorted({str(event["kind"]) for event in evaluation.timeline}, key=_row_order)
    for kind in kinds:
        events = [event for event in evaluation.timeline if event["kind"] == kind]
        symbol, colour = MARKERS.get(kind, ("x", "#000"))
        figure.add_trace(
            go.Scatter(
                x=[event["at"] for event in events],
                y=[kind] * len(events),
                mode="markers",
                name=kind,
                marker={"symbol": symbol, "color": colour, "size": 11},
                text=[str(event.get("reason") or event.get("version") or kind) for event in events],
                hoverinfo="x+text",
                showlegend=False,
            )
        )
    figure.update_layout(
        title="The adaptive policy's drift alarms and champion changes",
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": kinds},
        xaxis={"range": [evaluation.run.plan.start, evaluation.run.evaluated_until]},
        height=120 + 40 * max(len(kinds), 1),
        margin={"t": 50, "b": 30, "l": 130},
    )
    return figure


def _row_order(kind: str) -> tuple[int, str]:
    order = ["drift low", "drift medium", "drift high", "sequential alarm"]
    return (order.index(kind), kind) if kind in order else (len(order), kind)
