"""``btcmlops train`` and ``btcmlops models``: train a model, list, promote and roll back."""

from __future__ import annotations

import getpass
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.table import Table

from btcmlops.cli.output import console, emit_json, err_console
from btcmlops.cli.state import state
from btcmlops.features.schema import FEATURE_SETS, validate_feature_set
from btcmlops.modeling.model_types import DEFAULT_MODEL_TYPE, MODEL_TYPES, validate_model_type

# scikit-learn and skops load only when a command needs them: `btcmlops --help` stays fast.
if TYPE_CHECKING:
    from btcmlops.modeling.evaluation import ClassificationMetrics
    from btcmlops.modeling.registry import ModelRegistry
    from btcmlops.modeling.registry_records import ChampionChangeInfo, ModelVersionInfo
    from btcmlops.modeling.training import TrainedModel

app = typer.Typer(
    help="The model registry: list versions, promote a champion, roll back.",
    no_args_is_help=True,
)

_FEATURE_SET_HELP = f"Feature set: {', '.join(FEATURE_SETS)}."
_MODEL_TYPE_HELP = f"Model type: {', '.join(MODEL_TYPES)}."
_JSON = typer.Option(False, "--json", help="Print JSON.")


def _registry(ctx: typer.Context) -> ModelRegistry:
    from btcmlops.modeling.registry import ModelRegistry

    context = state(ctx).context()
    return ModelRegistry(context.store, context.settings.artifacts_dir, context.clock)


def _actor() -> str:
    """Who is at the command line, for the registry's created_by / actor columns."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"
    return f"cli:{user}"[:64]


# ------------------------------------------------------------------------------------ train


def train(
    ctx: typer.Context,
    feature_set: str = typer.Option(..., "--feature-set", help=_FEATURE_SET_HELP),
    model_type: str = typer.Option(DEFAULT_MODEL_TYPE, "--model-type", help=_MODEL_TYPE_HELP),
    promote: bool = typer.Option(False, "--promote", help="Make the new model the champion."),
    reason: str = typer.Option("trained from the command line", "--reason", help="Why."),
    as_json: bool = _JSON,
) -> None:
    """Train a model on the stored feature rows, register it and show its test scores."""
    from btcmlops.jsonable import jsonable
    from btcmlops.modeling.training import train_from_store

    feature_set = validate_feature_set(feature_set)
    model_type = validate_model_type(model_type)
    context = state(ctx).context()
    # The spinner goes to stderr, and not at all with --json, so stdout stays clean.
    spinner = (
        nullcontext()
        if as_json
        else err_console.status(f"training {model_type} on {feature_set} features...")
    )
    with spinner:
        trained = train_from_store(
            context.store,
            feature_set,
            model_type,
            clock=context.clock,
            settings=context.settings,
        )
    registry = _registry(ctx)
    info = registry.register(trained, created_by=_actor(), reason=reason)
    if promote:
        info = registry.promote(info.version, actor=_actor(), reason=reason)

    if as_json:
        emit_json(
            {
                "version": info.version,
                "status": info.status,
                "feature_set": feature_set,
                "model_type": model_type,
                "metrics": jsonable(trained.metrics_document()),
                "windows": trained.windows(),
                "beats_baselines": _beats_baselines(trained),
            }
        )
        return
    console.print(_metrics_table(trained))
    for window in trained.split.windows():
        console.print(
            f"{window.name:>10}: {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} "
            f"UTC, {window.rows} rows"
        )
    console.print(
        f"validation accuracy {trained.validation.accuracy:.3f}; purge gap "
        f"{trained.split.purge_gap.total_seconds() / 3600:.0f} h between parts"
    )
    top = ", ".join(
        f"{item.feature} ({item.importance_mean:+.4f})" for item in trained.importances[:5]
    )
    console.print(f"top features (drop in test ROC AUC when shuffled): {top}")
    console.print(f"registered [bold]{info.version}[/bold] as {info.status}")


def _beats_baselines(trained: TrainedModel) -> dict[str, bool]:
    return {
        name: trained.test.accuracy > metrics.accuracy
        for name, metrics in trained.baselines.items()
    }


def _metrics_table(trained: TrainedModel) -> Table:
    from btcmlops.modeling.evaluation import LAST_HOUR, MAJORITY_CLASS

    columns: list[tuple[str, ClassificationMetrics]] = [
        ("model", trained.test),
        ("majority class", trained.baselines[MAJORITY_CLASS]),
        ("last hour", trained.baselines[LAST_HOUR]),
    ]
    test = trained.split.windows()[-1]
    table = Table(
        title=f"{trained.feature_set} / {trained.model_type} on the test window\n"
        f"{test.start:%Y-%m-%d %H:%M} to {test.end:%Y-%m-%d %H:%M} UTC, {test.rows} hours"
    )
    table.add_column("metric", no_wrap=True)
    for name, _ in columns:
        table.add_column(name, justify="right", no_wrap=True)

    def row(label: str, show: Any) -> None:
        table.add_row(label, *(show(metrics) for _, metrics in columns))

    row("accuracy", lambda m: f"{m.accuracy:.3f}")
    row("  95% interval (Wilson)", lambda m: f"{m.accuracy_ci_low:.3f}-{m.accuracy_ci_high:.3f}")
    row("balanced accuracy", lambda m: f"{m.balanced_accuracy:.3f}")
    row("ROC AUC", lambda m: "n/a" if m.roc_auc is None else f"{m.roc_auc:.3f}")
    row("log loss", lambda m: f"{m.log_loss:.4f}")
    row("Brier score", lambda m: f"{m.brier_score:.4f}")
    row("calibration error (ECE)", lambda m: f"{m.expected_calibration_error:.4f}")
    row("share predicted up", lambda m: f"{m.predicted_up_rate:.1%}")
    return table


# ----------------------------------------------------------------------------- registry


@app.command("list")
def list_models(
    ctx: typer.Context,
    feature_set: str | None = typer.Option(None, "--feature-set", help=_FEATURE_SET_HELP),
    model_type: str | None = typer.Option(None, "--model-type", help=_MODEL_TYPE_HELP),
    as_json: bool = _JSON,
) -> None:
    """List registered model versions, newest first."""
    feature_set, model_type = _optional_pair(feature_set, model_type)
    versions = _registry(ctx).list_versions(feature_set, model_type)
    if as_json:
        emit_json({"count": len(versions), "models": [info.summary() for info in versions]})
        return
    if not versions:
        console.print("no registered models; train one with `btcmlops train`")
        return
    # The version (which carries the creation time) is never cut, so it can be copied.
    table = Table(title="registered models, newest first", box=box.SIMPLE_HEAD)
    table.add_column("version", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("test accuracy [95%]")
    table.add_column("validation")
    for info in versions:
        table.add_row(
            info.version,
            f"[bold green]{info.status}[/]" if info.status == "champion" else info.status,
            _accuracy_cell(info),
            _number(info.metrics.get("validation_accuracy")),
        )
    console.print(table)


@app.command("promote")
def promote(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The model version to make champion."),
    reason: str = typer.Option("promoted from the command line", "--reason", help="Why."),
    as_json: bool = _JSON,
) -> None:
    """Make VERSION the champion of its feature set and model type (checks its artifact first)."""
    from btcmlops.mlops.retraining.shadows import Shadows

    registry = _registry(ctx)
    before = registry.get(version)
    previous = registry.champion(before.feature_set, before.model_type)
    context = state(ctx).context()
    shadows = Shadows(context.store, context.clock, context.settings, registry)
    info = shadows.promote_by_hand(version, actor=_actor(), reason=reason)
    _report_change(info, previous, "promoted", as_json)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    feature_set: str = typer.Option(..., "--feature-set", help=_FEATURE_SET_HELP),
    model_type: str = typer.Option(..., "--model-type", help=_MODEL_TYPE_HELP),
    reason: str = typer.Option("rolled back from the command line", "--reason", help="Why."),
    as_json: bool = _JSON,
) -> None:
    """Put the previous champion of a feature set and model type back in place."""
    feature_set = validate_feature_set(feature_set)
    model_type = validate_model_type(model_type)
    registry = _registry(ctx)
    previous = registry.champion(feature_set, model_type)
    info = registry.rollback(feature_set, model_type, actor=_actor(), reason=reason)
    _report_change(info, previous, "rolled back to", as_json)


@app.command("history")
def history(
    ctx: typer.Context,
    feature_set: str | None = typer.Option(None, "--feature-set", help=_FEATURE_SET_HELP),
    model_type: str | None = typer.Option(None, "--model-type", help=_MODEL_TYPE_HELP),
    as_json: bool = _JSON,
) -> None:
    """Show every champion change: who, when, why and what it replaced."""
    feature_set, model_type = _optional_pair(feature_set, model_type)
    changes = _registry(ctx).champion_history(feature_set, model_type)
    if as_json:
        emit_json({"count": len(changes), "changes": [change.as_dict() for change in changes]})
        return
    if not changes:
        console.print("no champion has been promoted yet")
        return
    for change in changes:
        console.print(_history_line(change), highlight=False)


def _optional_pair(
    feature_set: str | None, model_type: str | None
) -> tuple[str | None, str | None]:
    """Validate the filters that were given; None stays None (no filter)."""
    return (
        None if feature_set is None else validate_feature_set(feature_set),
        None if model_type is None else validate_model_type(model_type),
    )


def _history_line(change: ChampionChangeInfo) -> str:
    replaced = f", replacing {change.previous_version}" if change.previous_version else ""
    return (
        f"{change.changed_at:%Y-%m-%d %H:%M} UTC  {change.action}: {change.version}{replaced} "
        f"(by {change.actor}: {change.reason})"
    )


def _report_change(
    info: ModelVersionInfo, previous: ModelVersionInfo | None, verb: str, as_json: bool
) -> None:
    if as_json:
        emit_json(
            {
                "champion": info.summary(),
                "previous_champion": None if previous is None else previous.version,
            }
        )
        return
    replaced = f" (replacing {previous.version})" if previous is not None else ""
    console.print(
        f"{info.feature_set}/{info.model_type}: {verb} [bold]{info.version}[/bold]{replaced}; "
        f"test accuracy {_accuracy_cell(info)}"
    )


def _accuracy_cell(info: ModelVersionInfo) -> str:
    test = info.metrics.get("test", {})
    low, high = test.get("accuracy_ci_low"), test.get("accuracy_ci_high")
    interval = "" if low is None or high is None else f" [{low:.3f}-{high:.3f}]"
    return f"{_number(info.test_accuracy)}{interval}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
