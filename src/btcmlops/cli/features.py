"""``btcmlops features``: build hourly feature rows from stored prices and sentiment."""

from __future__ import annotations

import typer

from btcmlops.cli.output import console, emit_json, progress_bar
from btcmlops.cli.state import state
from btcmlops.features.schema import FEATURE_SETS, validate_feature_set

app = typer.Typer(help="Feature rows: build and rebuild.", no_args_is_help=True)


def feature_sets_from(choice: str) -> list[str]:
    """``all`` or one feature set name, validated."""
    if choice.strip().lower() == "all":
        return list(FEATURE_SETS)
    return [validate_feature_set(choice)]


@app.command("build")
def build(
    ctx: typer.Context,
    feature_set: str = typer.Option("all", "--feature-set", help="vader, finbert or all."),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Delete this version's rows of the set and rebuild them all."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Build feature rows for every closed hour not built yet (incremental by default)."""
    from btcmlops.features.builder import build_features

    context = state(ctx).context()
    summaries = {}
    for name in feature_sets_from(feature_set):
        with progress_bar(f"building {name} features", unit="rows") as progress:
            summaries[name] = build_features(
                context.store,
                name,
                clock=context.clock,
                symbol=context.settings.symbol,
                rebuild=rebuild,
                progress=progress,
            )
    if as_json:
        emit_json({name: summary.as_dict() for name, summary in summaries.items()})
        return
    for summary in summaries.values():
        console.print(summary.line(), highlight=False)
