"""``btcmlops sentiment``: score stored articles with VADER and/or FinBERT."""

from __future__ import annotations

import typer

from btcmlops.cli.output import console, emit_json, err_console, progress_bar
from btcmlops.cli.state import state

app = typer.Typer(help="Sentiment scoring of stored articles.", no_args_is_help=True)


@app.command("score")
def score(
    ctx: typer.Context,
    scorer: str = typer.Option("all", "--scorer", help="vader, finbert or all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Score every article that this scorer has not scored yet (safe to repeat).

    With ``all``, a FinBERT that cannot load is reported and VADER still runs.
    """
    from btcmlops.mlops.article_scoring import score_pending_articles
    from btcmlops.sentiment.scorers import make_scorers

    context = state(ctx).context()
    selection = make_scorers(scorer, context.settings)
    for name, reason in selection.unavailable.items():
        err_console.print(f"{name} unavailable: {reason}", highlight=False, markup=False)
    results = {}
    for chosen in selection.scorers:
        with progress_bar(f"scoring with {chosen.name}", unit="articles") as progress:
            results[chosen.name] = score_pending_articles(
                context.store, chosen, clock=context.clock, progress=progress
            )
    if as_json:
        emit_json(
            {
                "scored": {name: summary.as_dict() for name, summary in results.items()},
                "unavailable": selection.unavailable,
            }
        )
    else:
        for summary in results.values():
            console.print(summary.line(), highlight=False)
    if any(summary.failed for summary in results.values()):
        raise typer.Exit(1)
