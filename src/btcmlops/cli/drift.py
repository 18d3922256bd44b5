"""``btcmlops drift``: drift checks from the command line.

``compare`` works on any two CSV or Parquet files (``POST /drift/compare`` does the same on
tables sent to the API). Exit codes: 0 no drift, 1 drift, 2 an error (unreadable file,
missing column, too few rows, a reference too short to estimate its dependence without
``--history``), reported as one line by the root command's error handler.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from btcmlops.cli.output import console, emit_json
from btcmlops.cli.state import state
from btcmlops.errors import InvalidInputError

if TYPE_CHECKING:  # numpy, scipy and pyarrow load only when `drift compare` runs
    from btcmlops.mlops.drift.compare import CompareReport

app = typer.Typer(help="Feature drift: compare datasets.", no_args_is_help=True)

_VERDICT_STYLE = {"high": "bold red", "medium": "red", "low": "yellow", "none": "green"}
_BOUND_NOTE = "≤ p: a certified upper bound; the verdict is the one the exact p-value gives."


@app.command("compare")
def compare(
    ctx: typer.Context,
    reference: Path = typer.Option(
        ..., "--reference", "-r", help="Reference dataset (CSV or Parquet), rows in time order."
    ),
    current: Path = typer.Option(..., "--current", "-c", help="Current dataset to check."),
    features: str | None = typer.Option(
        None, "--features", help="Comma-separated feature columns (default: shared numeric)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report here."),
    bins: int | None = typer.Option(
        None, "--bins", help="PSI bins, 2-100 [default: BTCMLOPS_DRIFT_PSI_BINS, 10]."
    ),
    alpha: float | None = typer.Option(
        None, "--alpha", help="FDR level, between 0 and 1 [default: 0.05]."
    ),
    psi_floor: float | None = typer.Option(
        None, "--psi-floor", help="PSI a drifting feature must reach [default: 0.1]."
    ),
    min_samples: int | None = typer.Option(
        None, "--min-samples", help="Rows needed in each file, at least 2 [default: 24]."
    ),
    history: Path | None = typer.Option(
        None,
        "--history",
        help="Earlier rows of the same features (at least as many as the reference), to "
        "estimate how dependent the rows are when the reference is too short for it.",
    ),
) -> None:
    """Compare two datasets feature by feature (KS, PSI). Exit 0 no drift, 1 drift, 2 error."""
    settings = state(ctx).settings()
    names = None
    if features is not None:
        names = [name.strip() for name in features.split(",") if name.strip()]
        if not names:
            raise InvalidInputError("--features names no feature")
    bins = settings.drift_psi_bins if bins is None else bins
    alpha = settings.drift_alpha if alpha is None else alpha
    psi_floor = settings.drift_psi_effect_floor if psi_floor is None else psi_floor
    min_samples = settings.drift_min_samples if min_samples is None else min_samples
    _check_options(bins, alpha, psi_floor, min_samples)
    from btcmlops.mlops.drift.compare import compare_files

    report = compare_files(
        reference,
        current,
        names,
        bins=bins,
        alpha=alpha,
        psi_effect_floor=psi_floor,
        min_samples=min_samples,
        history_path=history,
    )
    if html is not None:
        _write_html(report, html)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_table(report)
    raise typer.Exit(1 if report.drift else 0)


def _check_options(bins: int, alpha: float, psi_floor: float, min_samples: int) -> None:
    if not 2 <= bins <= 100:
        raise InvalidInputError(f"--bins must be between 2 and 100, got {bins}")
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"--alpha must be between 0 and 1, got {alpha}")
    if not psi_floor >= 0.0:
        raise InvalidInputError(f"--psi-floor must be at least 0, got {psi_floor}")
    if min_samples < 2:
        raise InvalidInputError(f"--min-samples must be at least 2, got {min_samples}")


def _write_html(report: CompareReport, path: Path) -> None:
    try:
        from btcmlops.mlops.drift.html_report import render_html

        path.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _print_table(report: CompareReport) -> None:
    result = report.result
    table = Table(title=f"drift of {report.current_path} against {report.reference_path}")
    for title in ("feature", "PSI", "noise level", "KS statistic", "adjusted p", "verdict"):
        table.add_column(title, justify="left" if title in ("feature", "verdict") else "right")
    for item in result.drift_results:
        if item.drift_detected:
            verdict = f"drift ({item.level})"
        elif item.ks_significant:
            verdict = "changed (small)"
        else:
            verdict = "no drift" if item.tested else "not tested"
        style = _VERDICT_STYLE.get(item.level, "") if item.tested else "dim"
        table.add_row(
            item.feature,
            _fmt(item.psi),
            _fmt(item.psi_expected),
            _fmt(item.ks_statistic),
            _fmt_p(item.ks_pvalue_adjusted, exact=item.ks_pvalue_adjusted_exact),
            f"[{style}]{verdict}[/]" if style else verdict,
        )
    console.print(table)
    if not all(item.ks_pvalue_adjusted_exact for item in result.drift_results):
        console.print(_BOUND_NOTE, style="dim", highlight=False, markup=False)
    severity = result.drift_severity or "none"
    console.print(
        f"severity [{_VERDICT_STYLE.get(severity, '')}]{severity}[/]: "
        f"{result.significant_drift_count} of {result.features_tested} tested features drifted "
        f"({result.ks_significant_count} with a significant KS test); "
        f"reference {result.reference_samples} rows, current {result.current_samples} rows",
        highlight=False,
    )
    for note in report.notes:
        console.print(f"note: {note}", style="dim", highlight=False, markup=False)


def _fmt(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.4f}"


def _fmt_p(value: float, *, exact: bool) -> str:
    if not math.isfinite(value):
        return "–"
    shown = f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"
    return shown if exact else f"≤ {shown}"
