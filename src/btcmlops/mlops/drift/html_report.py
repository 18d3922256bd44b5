"""A self-contained HTML page for a compare report: inline CSS and SVG, nothing fetched."""

from __future__ import annotations

import math
from html import escape

from btcmlops.mlops.drift.compare import CompareReport
from btcmlops.mlops.drift.feature_drift import FeatureDrift

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.3rem;margin:0 0 .5rem}
.summary{margin:.5rem 0 1rem}
.badge{display:inline-block;padding:.1rem .6rem;border-radius:.8rem;font-weight:600}
.none{background:#dff3e4}.low{background:#fff3c4}.medium{background:#ffd8a8}
.high{background:#ffc9c9}.untested{background:#e9ecef}
table{border-collapse:collapse;width:100%}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th:first-child,td:first-child,.verdict{text-align:left}
th{background:#f6f8fa;position:sticky;top:0}
.notes{color:#57606a}
svg{vertical-align:middle}
"""

_BAR_WIDTH = 160
_BOUND_TITLE = "a certified upper bound; the verdict is the one the exact p-value gives"
_BOUND_NOTE = (
    "≤ p: a certified upper bound on the p-value, computed exactly only where the verdict "
    "needs it; the verdict is the one the exact value gives."
)


def render_html(report: CompareReport) -> str:
    """The report as one HTML document (a table with PSI bars against the noise level)."""
    result = report.result
    severity = result.drift_severity or "untested"
    scale = _bar_scale(result.drift_results)
    rows = "\n".join(_row(item, scale) for item in result.drift_results)
    notes = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
    bounded = not all(
        item.ks_pvalue_exact and item.ks_pvalue_adjusted_exact for item in result.drift_results
    )
    bound_note = f"<p class='notes'>{_BOUND_NOTE}</p>\n" if bounded else ""
    summary = (
        f"<span class='badge {escape(severity)}'>severity: {escape(severity)}</span> "
        f"{result.significant_drift_count} of {result.features_tested} tested features "
        f"drifted ({result.ks_significant_count} with a significant KS test); "
        f"reference {result.reference_samples} rows, current {result.current_samples} rows; "
        f"alpha {result.alpha:g} (Benjamini–Hochberg), PSI floor {result.psi_effect_floor:g}, "
        f"{result.bins} bins."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>btcmlops drift report</title><style>{_STYLE}</style></head>
<body>
<h1>Feature drift: {escape(report.current_path)} against {escape(report.reference_path)}</h1>
<p class="summary">{summary}</p>
<ul class="notes">{notes}</ul>
<table>
<thead><tr><th>feature</th><th class="verdict">verdict</th><th>PSI (bar) vs noise level (line)</th>
<th>PSI</th><th>noise</th><th>excess</th><th>KS D</th><th>p</th><th>adjusted p</th>
<th>mean ref → cur</th><th>std ref → cur</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p class="notes">PSI on reference-quantile bins; noise = expected PSI with no drift at these
sample sizes; adjusted p = Benjamini–Hochberg over the tested features of the KS p-value
corrected for autocorrelation. A feature drifts when adjusted p &lt; alpha and PSI reaches
the floor.</p>
{bound_note}</body></html>
"""


def _row(item: FeatureDrift, scale: float) -> str:
    verdict = item.level if item.tested else "untested"
    if item.drift_detected:
        verdict_text = f"drift ({item.level})"
    elif item.ks_significant:
        verdict_text = "changed (small)"
    else:
        verdict_text = "no drift" if item.tested else "not tested"
    return (
        f"<tr><td>{escape(item.feature)}</td>"
        f"<td class='verdict'><span class='badge {verdict}'>{verdict_text}</span></td>"
        f"<td>{_bar(item, scale)}</td>"
        f"<td>{_number(item.psi)}</td><td>{_number(item.psi_expected)}</td>"
        f"<td>{_number(item.psi_excess)}</td><td>{_number(item.ks_statistic)}</td>"
        f"<td>{_pvalue(item.ks_pvalue, item.ks_pvalue_exact)}</td>"
        f"<td>{_pvalue(item.ks_pvalue_adjusted, item.ks_pvalue_adjusted_exact)}</td>"
        f"<td>{_number(item.reference_mean)} → {_number(item.current_mean)}</td>"
        f"<td>{_number(item.reference_std)} → {_number(item.current_std)}</td></tr>"
    )


def _bar_scale(items: tuple[FeatureDrift, ...]) -> float:
    values = [
        max(item.psi, item.psi_expected)
        for item in items
        if math.isfinite(item.psi) and math.isfinite(item.psi_expected)
    ]
    return max([0.3, *values])


def _bar(item: FeatureDrift, scale: float) -> str:
    if not (math.isfinite(item.psi) and math.isfinite(item.psi_expected)):
        return ""
    width = _BAR_WIDTH * min(item.psi / scale, 1.0)
    noise = _BAR_WIDTH * min(item.psi_expected / scale, 1.0)
    colour = "#e03131" if item.drift_detected else "#f08c00" if item.ks_significant else "#868e96"
    return (
        f"<svg width='{_BAR_WIDTH}' height='12' role='img' aria-label='PSI bar'>"
        f"<rect width='{_BAR_WIDTH}' height='12' fill='#f1f3f5'/>"
        f"<rect width='{width:.1f}' height='12' fill='{colour}'/>"
        f"<line x1='{noise:.1f}' x2='{noise:.1f}' y1='0' y2='12' stroke='#1b1f24' "
        "stroke-width='2'/></svg>"
    )


def _number(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.4g}"


def _pvalue(value: float, exact: bool) -> str:
    if not math.isfinite(value):
        return "–"
    shown = f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"
    return shown if exact else f"<span title='{_BOUND_TITLE}'>≤ {shown}</span>"
