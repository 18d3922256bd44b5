"""The backtest's results as one JSON-ready document and as a self-contained HTML report."""

from __future__ import annotations

from typing import Any

from btcmlops.replay.policies import BASELINES, POLICIES, Evaluation


def document(evaluation: Evaluation, seconds: float) -> dict[str, Any]:
    """What ``btcmlops backtest --json`` prints (every number the table shows, and more)."""
    run = evaluation.run
    plan = run.plan
    policies = {}
    for name in POLICIES:
        predictions = evaluation.policies[name]
        policies[name] = {
            **evaluation.scores[name].as_dict(),
            "retrainings": predictions.retrainings,
            "deployments": predictions.deployments,
            "rollbacks": predictions.rollbacks,
            "fallbacks": predictions.fallbacks,
            "hours_without_prediction": int(predictions.p_up.isna().sum()),
        }
        if name != "adaptive":
            policies[name]["adaptive_against_it"] = evaluation.paired[name].as_dict()
    baselines = {
        name: {
            **evaluation.scores[name].as_dict(),
            "adaptive_against_it": evaluation.paired[name].as_dict(),
        }
        for name in BASELINES
    }
    return {
        "prices": str(plan.prices),
        "news": None if plan.news is None else str(plan.news),
        "start": plan.start,
        "end": plan.end,
        "warm_days": plan.warm_days,
        "feature_set": plan.feature_set,
        "model_type": plan.model_type,
        "models_see": "prices, the calendar and news sentiment"
        if run.with_news
        else "prices and the calendar only (no news)",
        "hours": len(evaluation.actual),
        "hours_planned": plan.hours,
        "interrupted": run.interrupted,
        "first_champion": run.first_champion,
        "first_champion_reason": run.first_champion_words,
        "policies": policies,
        "baselines": baselines,
        "drift_alarms": {
            "by_month": evaluation.drift_alarms,
            "total": _totals(evaluation.drift_alarms),
        },
        "champion_changes": [
            {key: value for key, value in event.items() if value is not None}
            for event in evaluation.timeline
            if event["version"] is not None
        ],
        "notes": run.notes,
        "seconds": round(seconds, 1),
        "seconds_by_stage": {key: round(value, 1) for key, value in run.seconds.items()},
    }


def versus_text(paired: dict[str, Any] | None) -> str:
    """The table's last cell: the adaptive policy's accuracy minus the other's, its p-value
    (``*`` below 0.05), or why there is none."""
    if paired is None:
        return "-"
    difference = f"{paired['difference']:+.4f}"
    if paired["p_value"] is None:
        return f"{difference} (too few hours)"
    p_value = paired["p_value"]
    shown = "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"
    return f"{difference} ({shown})" + (" *" if paired["significant"] else "")


def _totals(months: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counts in months.values():
        for key, count in counts.items():
            totals[key] = totals.get(key, 0) + count
    return totals
