"""The loop's operations by hand: predict, resolve outcomes, retrain, run the scheduler."""

from __future__ import annotations

import math
import signal
from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Table

from btcmlops.cli.output import console, emit_json, err_console
from btcmlops.cli.state import state

if TYPE_CHECKING:  # the retraining package loads only when a command needs it
    from btcmlops.mlops.retraining.results import ShadowEvidenceDict

JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")
FEATURE_SET = typer.Option("vader", "--feature-set", help="vader or finbert.")
MODEL_TYPE = typer.Option(
    "random_forest",
    "--model-type",
    help="random_forest, gradient_boosting or logistic_regression.",
)


def _runtime(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from btcmlops.mlops.runtime import Runtime

    return Runtime(state(ctx).context())


def predict(
    ctx: typer.Context,
    feature_set: str = typer.Option(..., "--feature-set", help="vader or finbert."),
    model_type: str = MODEL_TYPE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Predict the next hour with the champion and log it (source: scheduled)."""
    from btcmlops.mlops.predictions.serving import predict_and_log

    runtime = _runtime(ctx).start()
    try:
        answer = predict_and_log(
            runtime.predictor,
            runtime.logger,
            runtime.clock,
            feature_set,
            model_type,
            use_cached_features=False,
            source="scheduled",
        )
    finally:
        runtime.close()  # flushes the log record
    if as_json:
        emit_json(answer)
        return
    body = answer["prediction"]
    console.print(
        f"{answer['model_info']['model_version']}: next hour after "
        f"{body['feature_hour']:%Y-%m-%d %H:%M} UTC is [bold]{body['direction']}[/bold] "
        f"(P(up) {body['probability']['up']:.3f}); logged as prediction {answer['prediction_id']}"
    )


outcomes_app = typer.Typer(help="Outcomes of logged predictions.", no_args_is_help=True)


@outcomes_app.command("resolve")
def resolve(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Fill in what happened for every prediction whose hour has closed (idempotent)."""
    from btcmlops.mlops.predictions.outcomes import resolve_outcomes

    context = state(ctx).context()
    summary = resolve_outcomes(
        context.store,
        clock=context.clock,
        symbol=context.settings.symbol,
        grace_hours=context.settings.outcome_grace_hours,
    )
    if as_json:
        emit_json(summary.__dict__)
    else:
        console.print(summary.line())


retrain_app = typer.Typer(help="Retraining: decide, run, inspect.", no_args_is_help=True)


@retrain_app.command("check")
def check(
    ctx: typer.Context,
    feature_set: str = FEATURE_SET,
    model_type: str = MODEL_TYPE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Should this pair retrain now? Every check with its numbers (recorded)."""
    decision = _runtime(ctx).retraining.should_retrain(feature_set, model_type)
    if as_json:
        emit_json(decision)
        return
    verdict = "[bold red]yes[/]" if decision["should_retrain"] else "[bold green]no[/]"
    console.print(f"{feature_set}/{model_type}: retrain? {verdict}")
    for reason in decision["reasons"] or ["no trigger"]:
        console.print(f"  - {reason}", highlight=False)
    for name in ("performance_check", "drift_check", "schedule_check", "data_check"):
        reason = decision[name].get("reason")
        if reason:
            console.print(f"  {name.replace('_', ' ')}: {reason}", highlight=False)


@retrain_app.command("execute")
def execute(
    ctx: typer.Context,
    feature_set: str = FEATURE_SET,
    model_type: str = MODEL_TYPE,
    no_deploy: bool = typer.Option(False, "--no-deploy", help="Evaluate but never deploy."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Retrain now: train a challenger, meet the champion on the same hours, deploy if better."""
    runtime = _runtime(ctx)
    with err_console.status(f"retraining {feature_set}/{model_type}"):
        result = runtime.retraining.retrain_model(
            feature_set,
            model_type,
            deploy_if_better=not no_deploy,
            trigger="manual",
            reasons=["requested with `btcmlops retrain execute`"],
            actor="cli",
        )
    if as_json:
        emit_json(result)
    elif result.get("success"):
        comparison = result["comparison"]
        current = comparison["current_accuracy"]
        console.print(
            f"challenger {result['new_model']['model_version']}: accuracy "
            f"{comparison['new_accuracy']:.3f}"
            + (f" vs champion {current:.3f}" if current is not None else "")
            + f" on {result['samples']['comparison']} test hours"
        )
        deployed = result["deployment"]["deployed"]
        console.print(
            f"{'deployed' if deployed else 'kept the champion'}: {result['deployment']['reason']}",
            highlight=False,
        )
    if not result.get("success"):
        err_console.print(f"error: retraining failed: {result.get('error')}", highlight=False)
        raise typer.Exit(1)


@retrain_app.command("status")
def status(ctx: typer.Context, model_type: str = MODEL_TYPE, as_json: bool = JSON_OPTION) -> None:
    """The retraining decision per feature set and the thresholds in force."""
    report = _runtime(ctx).retraining.status(model_type)
    if as_json:
        emit_json(report)
        return
    for feature_set in ("vader", "finbert"):
        entry = report[feature_set]
        console.print(
            f"{feature_set}: retrain {'yes' if entry['should_retrain'] else 'no'}; "
            f"{entry['data_available']} rows (need {entry['data_required']}); "
            f"champion {entry['champion_version'] or 'none'}"
        )
    console.print(f"thresholds: {report['thresholds']}", highlight=False)


@retrain_app.command("history")
def history(
    ctx: typer.Context,
    feature_set: str | None = typer.Option(None, "--feature-set"),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    as_json: bool = JSON_OPTION,
) -> None:
    """Past retraining runs, newest first, with their decisions."""
    runs = _runtime(ctx).retraining.history(feature_set, None, limit)
    if as_json:
        emit_json(runs)
        return
    table = Table(title="retraining runs")
    for column in ("started", "pair", "trigger", "status", "decision", "why"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run["started_at"][:16],
            f"{run['feature_set']}/{run['model_type']}",
            run["trigger"],
            run["status"],
            run["decision"] or "",
            _short(run["decision_reason"] or run["error"] or ""),
        )
    console.print(table)


@retrain_app.command("shadows")
def shadows(
    ctx: typer.Context,
    feature_set: str | None = typer.Option(None, "--feature-set"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Models predicting in shadow beside each champion, with the evidence they have accrued
    toward promotion (challengers) or rollback (the previous champion)."""
    runtime = _runtime(ctx)
    reports = [
        runtime.retraining.shadow_report(fs, mt)
        for fs, mt in runtime.registry.champion_pairs()
        if feature_set is None or fs == feature_set
    ]
    if as_json:
        emit_json(reports)
        return
    for report in reports:
        champion = report["champion"]
        console.print(
            f"[bold]{report['feature_set']}/{report['model_type']}[/]: champion "
            f"{champion['version']}"
            + (
                f" (declared baseline: {champion['baseline_rule']})"
                if champion["kind"] == "baseline"
                else ""
            ),
            highlight=False,
        )
        table = Table()
        for column in ("shadow", "role", "hours (offline+live)", "evidence", "needs", "failed"):
            table.add_column(column)
        for shadow in report["shadows"]:
            decision = shadow["decision"] or {}
            table.add_row(
                shadow["version"],
                shadow["role"],
                f"{shadow['offline_hours']}+{shadow['live_hours']}",
                _evidence_words(shadow, "statistic"),
                _evidence_words(shadow, "bar"),
                ", ".join(decision.get("failed", [])),
            )
        console.print(table)


def _evidence_words(shadow: ShadowEvidenceDict, field: Literal["statistic", "bar"]) -> str:
    """Wins for a challenger's trial, the e-value for the rollback test."""
    value = shadow[field]
    if shadow["role"] == "challenger":
        return f"{value:g} wins" + (
            " (trial over)" if shadow["trial_over"] and field == "bar" else ""
        )
    return f"e-value {math.exp(min(value, 700)):.3g}"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scheduler(ctx: typer.Context) -> None:
    """Run the scheduler alone (no HTTP API); one instance leads across processes."""
    from btcmlops.mlops.scheduler import Scheduler

    runtime = _runtime(ctx).start()
    running = Scheduler(runtime)
    # SIGTERM (a process manager stopping it) ends it like Ctrl-C: the lease is released at
    # once, so a standby scheduler takes over without waiting for it to lapse.
    signal.signal(signal.SIGTERM, lambda *_: running.stop())
    err_console.print("scheduler running (Ctrl-C to stop)")
    try:
        running.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()
