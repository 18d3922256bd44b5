"""Drift checks on the store: features (reference window vs current window) and the model.

Windows are read off the clock. Feature rows are available when their bar has closed, so with
``end = floor_hour(now)`` the current window holds the rows ``[end - current_days, end)`` and
the reference window the ``reference_days`` before it. Only the features the schema marks as
monitored are tested; the statistics are ``mlops.drift.feature_drift`` (see
``docs/drift.md``).

Model drift compares realised accuracy of the pair's predictions (those with outcomes) made in
the two windows, with a one-sided two-proportion test, Wilson intervals, and calibration
(expected calibration error and Brier score on P(up)). It also estimates the current accuracy
of predictions whose outcomes are still pending from the model's own probabilities,
recalibrated on the reference window: an estimate that assumes no concept drift.

Every check is stored in ``drift_reports`` (unless ``record=False``) so trends can be plotted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, select, true

from btcmlops.clock import Clock, floor_hour
from btcmlops.config import Settings
from btcmlops.db.models import (
    SHADOW_SOURCE,
    DriftReport,
    ModelVersion,
    PredictionLog,
)
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.features.frames import load_feature_frame
from btcmlops.features.schema import (
    FEATURE_VERSION,
    feature_names,
    monitored_feature_names,
    validate_feature_set,
)
from btcmlops.mlops.drift.feature_drift import compare_features, history_is_used
from btcmlops.mlops.retraining.queries import champion_since
from btcmlops.mlops.significance import two_proportion_test
from btcmlops.modeling.evaluation import CALIBRATION_BINS, wilson_interval
from btcmlops.modeling.model_types import validate_model_type
from btcmlops.modeling.registry import json_safe

SEVERITY_ORDER = {"none": 0, "low": 1, "medium": 2, "high": 3}
MEDIUM_DROP = 0.05
HIGH_DROP = 0.10


class DriftDetector:
    """Feature and model drift of the store's data, recorded in ``drift_reports``."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    # ------------------------------------------------------------------ windows
    def _windows(
        self, reference_days: float | None, current_days: float | None
    ) -> tuple[float, float, datetime, datetime, datetime]:
        reference_days = reference_days or self.settings.drift_reference_days
        current_days = current_days or self.settings.drift_current_days
        if not (0 < reference_days <= 365 and 0 < current_days <= 90):
            raise InvalidInputError(
                "reference_days must be in (0, 365] and current_days in (0, 90], got "
                f"{reference_days} and {current_days}"
            )
        end = floor_hour(self.clock.now())
        split = end - timedelta(days=current_days)
        start = split - timedelta(days=reference_days)
        return reference_days, current_days, start, split, end

    # ------------------------------------------------------------------ features
    def detect_feature_drift(
        self,
        feature_set: str,
        reference_days: float | None = None,
        current_days: float | None = None,
        *,
        record: bool = True,
    ) -> dict[str, Any]:
        """KS and PSI per monitored feature, reference window vs current window."""
        feature_set = validate_feature_set(feature_set)
        reference_days, current_days, start, split, end = self._windows(
            reference_days, current_days
        )
        names = monitored_feature_names(feature_set)
        settings = self.settings
        # autocorrelation times come from the weeks before the reference (compare_features)
        history_start = start - timedelta(days=settings.drift_autocorrelation_days)
        frame = load_feature_frame(
            self.store, feature_set, FEATURE_VERSION, names, start=history_start, end=end
        )
        history = frame[frame.index < start]
        reference = frame[(frame.index >= start) & (frame.index < split)]
        current = frame[frame.index >= split]
        result = compare_features(
            reference,
            current,
            names,
            bins=settings.drift_psi_bins,
            alpha=settings.drift_alpha,
            psi_effect_floor=settings.drift_psi_effect_floor,
            min_samples=settings.drift_min_samples,
            history=history,
        )
        results = [_feature_row(item) for item in result.drift_results if item.tested]
        tested = max(result.features_tested, 1)
        analysis = {
            "status": result.status,
            "feature_set": feature_set,
            "reference_period_days": reference_days,
            "current_period_days": current_days,
            "reference_samples": result.reference_samples,
            "current_samples": result.current_samples,
            "features_tested": result.features_tested,
            "significant_drift_count": result.significant_drift_count,
            "share_drifted": result.significant_drift_count / tested,
            "drift_severity": result.drift_severity,
            "drift_results": results,
            "top_features": [item["feature"] for item in results if item["drift_detected"]][:5],
            "message": result.message,
            "method": {
                "ks": "two-sample KS; decisions on autocorrelation-adjusted p-values, "
                "Benjamini-Hochberg across features",
                "psi_bins": result.bins,
                "alpha": result.alpha,
                "psi_effect_floor": result.psi_effect_floor,
                "min_samples": result.min_samples,
                "autocorrelation_from": (
                    "history before the reference"
                    if history_is_used(len(history), len(reference))
                    else "reference window"
                ),
                "autocorrelation_history_rows": len(history),
            },
            "windows": _windows_dict(start, split, end),
            "timestamp": self.clock.now(),
        }
        if record:
            self._record("feature", feature_set, None, analysis)
        return analysis

    def distribution(
        self,
        feature_set: str,
        feature: str,
        reference_days: float | None = None,
        current_days: float | None = None,
        bins: int = 20,
    ) -> dict[str, Any]:
        """Shares of the reference and current windows over common bins, for one feature."""
        feature_set = validate_feature_set(feature_set)
        if feature not in feature_names(feature_set):
            raise InvalidInputError(f"{feature!r} is not a feature of the {feature_set} set")
        _, _, start, split, end = self._windows(reference_days, current_days)
        frame = load_feature_frame(
            self.store, feature_set, FEATURE_VERSION, [feature], start=start, end=end
        )
        reference = frame.loc[frame.index < split, feature].dropna().to_numpy()
        current = frame.loc[frame.index >= split, feature].dropna().to_numpy()
        both = np.concatenate([reference, current])
        if both.size == 0:
            edges = np.array([0.0, 1.0])
        else:
            low, high = (
                np.quantile(both, [0.005, 0.995]) if both.size > 20 else (both.min(), both.max())
            )
            edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
        clipped = np.clip  # values beyond the shown range fall in the end bins

        def shares(values: np.ndarray) -> list[float]:
            if values.size == 0:
                return [0.0] * (len(edges) - 1)
            counts, _ = np.histogram(clipped(values, edges[0], edges[-1]), bins=edges)
            return (counts / values.size).tolist()

        return {
            "feature": feature,
            "feature_set": feature_set,
            "edges": edges.tolist(),
            "reference_share": shares(reference),
            "current_share": shares(current),
            "reference_samples": int(reference.size),
            "current_samples": int(current.size),
            "windows": _windows_dict(start, split, end),
        }

    # ------------------------------------------------------------------ model
    def detect_model_drift(
        self,
        feature_set: str,
        model_type: str,
        reference_days: float | None = None,
        current_days: float | None = None,
        *,
        record: bool = True,
    ) -> dict[str, Any]:
        """Accuracy and calibration of the champion's predictions, reference vs current window.

        Both windows hold one model version's served predictions: the current champion's. A
        reference window that reaches back before the champion took over starts at the
        takeover instead (and says so), so a deployment never shows up as drift.
        """
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        reference_days, current_days, start, split, _ = self._windows(reference_days, current_days)
        now = self.clock.now()
        version, took_over = self._champion_of(feature_set, model_type)
        cut = took_over is not None and took_over > start
        reference_start = min(took_over, split) if cut and took_over else start
        reference = self._window_stats(feature_set, model_type, reference_start, split, version)
        current = self._window_stats(
            feature_set,
            model_type,
            max(split, took_over) if cut and took_over else split,
            now,
            version,
        )
        minimum = self.settings.model_drift_min_predictions
        enough = reference["n"] >= minimum and current["n"] >= minimum
        analysis: dict[str, Any] = {
            "status": "success" if enough else "insufficient_data",
            "feature_set": feature_set,
            "model_type": model_type,
            "reference_period_days": reference_days,
            "current_period_days": current_days,
            "reference_predictions": reference["n"],
            "current_predictions": current["n"],
            "min_predictions": minimum,
            "windows": _windows_dict(start, split, now),
            "model_version": version,
            "timestamp": now,
        }
        if cut and took_over is not None:
            analysis["window_note"] = (
                f"windows cut to start at {took_over.isoformat()}, when {version} became the "
                "champion: both hold that one version's predictions"
            )
        accuracy: dict[str, Any] = {
            "reference": reference["accuracy"],
            "current": current["accuracy"],
            "drop": None,
            "drift_detected": False,
            "p_value": None,
            "alpha": self.settings.model_drift_alpha,
            "reference_interval": _interval(reference),
            "current_interval": _interval(current),
        }
        severity = None
        if enough:
            test = two_proportion_test(
                reference["correct"], reference["n"], current["correct"], current["n"]
            )
            real = test.p_value < accuracy["alpha"] and test.difference > 0
            accuracy.update(drop=test.difference, p_value=test.p_value, drift_detected=real)
            severity = _drop_severity(test.difference) if real else "none"
        else:
            analysis["message"] = (
                f"{reference['n']} reference and {current['n']} current predictions with outcomes; "
                f"{minimum} needed on each side"
            )
        analysis["accuracy"] = accuracy
        analysis["confidence"] = {
            "reference_avg": reference["avg_confidence"],
            "current_avg": current["avg_confidence"],
            # Seed field, kept for compatibility: average confidence minus accuracy (how far
            # the model is over-confident); degradation is its change from reference to now.
            "reference_calibration_gap": _gap(reference),
            "current_calibration_gap": _gap(current),
            "calibration_degradation": _difference(_gap(current), _gap(reference)),
        }
        analysis["calibration"] = {
            "reference_ece": reference["ece"],
            "current_ece": current["ece"],
            "reference_brier": reference["brier"],
            "current_brier": current["brier"],
        }
        analysis["estimated_accuracy"] = self._estimated_accuracy(
            feature_set, model_type, split, now, reference, version
        )
        analysis["drift_severity"] = severity
        if record:
            self._record("model", feature_set, model_type, analysis)
        return analysis

    def _champion_of(self, feature_set: str, model_type: str) -> tuple[str | None, datetime | None]:
        """The pair's champion version and when it took over (``None`` without one)."""
        with self.store.session() as session:
            version = session.scalar(
                select(ModelVersion.version).where(
                    ModelVersion.feature_set == feature_set,
                    ModelVersion.model_type == model_type,
                    ModelVersion.status == "champion",
                )
            )
        if version is None:
            return None, None
        return version, champion_since(self.store, feature_set, model_type)

    def _window_stats(
        self,
        feature_set: str,
        model_type: str,
        since: datetime,
        until: datetime,
        version: str | None,
    ) -> dict[str, Any]:
        where = and_(
            PredictionLog.feature_set == feature_set,
            PredictionLog.model_type == model_type,
            PredictionLog.outcome_status == "resolved",
            PredictionLog.predicted_at >= since,
            PredictionLog.predicted_at < until,
            PredictionLog.source != SHADOW_SOURCE,
            PredictionLog.model_version == version if version is not None else true(),
        )
        rows_in = _binned(where)
        p, actual = rows_in.c.probability_up, rows_in.c.actual_direction
        per_bin = select(
            rows_in.c.bin,
            func.count().label("n"),
            func.sum(case((rows_in.c.prediction_correct.is_(True), 1), else_=0)).label("correct"),
            func.sum(actual).label("ups"),
            func.sum(p).label("p_sum"),
            func.sum(rows_in.c.confidence).label("confidence_sum"),
            func.sum((p - actual) * (p - actual)).label("squared_error"),
        ).group_by(rows_in.c.bin)
        with self.store.session() as session:
            rows = session.execute(per_bin).all()
        n = sum(int(row.n) for row in rows)
        stats: dict[str, Any] = {
            "n": n,
            "correct": sum(int(row.correct or 0) for row in rows),
            "accuracy": None,
            "avg_confidence": None,
            "ece": None,
            "brier": None,
            "bins": {int(row.bin): (int(row.n), int(row.correct or 0)) for row in rows},
        }
        if n:
            stats["accuracy"] = stats["correct"] / n
            stats["avg_confidence"] = sum(float(row.confidence_sum or 0) for row in rows) / n
            stats["brier"] = sum(float(row.squared_error or 0) for row in rows) / n
            # ECE = Σ_b |Σ y_b - Σ p_b| / n (the same definition as modeling.evaluation)
            stats["ece"] = sum(abs(float(row.ups or 0) - float(row.p_sum or 0)) for row in rows) / n
        return stats

    def _estimated_accuracy(
        self,
        feature_set: str,
        model_type: str,
        since: datetime,
        until: datetime,
        reference: dict[str, Any],
        version: str | None = None,
    ) -> dict[str, Any]:
        """Expected accuracy of pending predictions from the model's own probabilities.

        Each pending prediction is expected to be right with its confidence, or, where the
        reference window has at least 10 resolved predictions in the same P(up) bin, with the
        accuracy the model really had in that bin (a reliability-curve recalibration). This
        assumes the relation between features and outcome has not changed (no concept drift):
        it can see a model becoming unsure, not a market that stopped following it.
        """
        rows_in = _binned(
            and_(
                PredictionLog.feature_set == feature_set,
                PredictionLog.model_type == model_type,
                PredictionLog.outcome_status == "pending",
                PredictionLog.predicted_at >= since,
                PredictionLog.predicted_at < until,
                PredictionLog.source != SHADOW_SOURCE,
                PredictionLog.model_version == version if version is not None else true(),
            )
        )
        query = select(
            rows_in.c.bin,
            func.count().label("n"),
            func.sum(rows_in.c.confidence).label("confidence_sum"),
        ).group_by(rows_in.c.bin)
        with self.store.session() as session:
            rows = session.execute(query).all()
        pending = sum(int(row.n) for row in rows)
        if not pending:
            return {"value": None, "predictions": 0, "note": "no pending predictions to estimate"}
        raw = sum(float(row.confidence_sum or 0) for row in rows) / pending
        expected, recalibrated = 0.0, 0
        for row in rows:
            seen, right = reference["bins"].get(int(row.bin), (0, 0))
            if seen >= 10:
                expected += int(row.n) * right / seen
                recalibrated += int(row.n)
            else:
                expected += float(row.confidence_sum or 0)
        return {
            "value": expected / pending,
            "raw_confidence_estimate": raw,
            "predictions": pending,
            "recalibrated_share": recalibrated / pending,
            "note": "estimate from the model's probabilities, recalibrated on the reference "
            "window; assumes no concept drift",
        }

    # ------------------------------------------------------------------ summary
    def get_drift_summary(
        self,
        feature_set: str,
        model_type: str,
        reference_days: float | None = None,
        current_days: float | None = None,
        *,
        record: bool = True,
    ) -> dict[str, Any]:
        """Both analyses, the overall severity and what to do next."""
        features = self.detect_feature_drift(
            feature_set, reference_days, current_days, record=record
        )
        model = self.detect_model_drift(
            feature_set, model_type, reference_days, current_days, record=record
        )
        severities = [
            analysis["drift_severity"]
            for analysis in (features, model)
            if analysis["status"] == "success" and analysis["drift_severity"] is not None
        ]
        # Insufficient data never outranks a real severity: it is left out, not counted.
        overall = max(severities, key=SEVERITY_ORDER.__getitem__) if severities else None
        summary = {
            "feature_set": features["feature_set"],
            "model_type": model["model_type"],
            "status": "success" if severities else "insufficient_data",
            "overall_severity": overall,
            "reference_period_days": features["reference_period_days"],
            "current_period_days": features["current_period_days"],
            "feature_drift": {
                "status": features["status"],
                "drift_severity": features["drift_severity"],
                "significant_drift_count": features["significant_drift_count"],
                "features_tested": features["features_tested"],
                "share_drifted": features["share_drifted"],
                "top_features": features["top_features"],
                "reference_samples": features["reference_samples"],
                "current_samples": features["current_samples"],
            },
            "model_drift": {
                "status": model["status"],
                "drift_severity": model["drift_severity"],
                "accuracy_drop": model["accuracy"]["drop"],
                "reference_accuracy": model["accuracy"]["reference"],
                "current_accuracy": model["accuracy"]["current"],
                "p_value": model["accuracy"]["p_value"],
                "estimated_accuracy": model["estimated_accuracy"]["value"],
            },
            "recommendations": _recommendations(features, model, overall),
            "timestamp": self.clock.now(),
        }
        if record:
            self._record("summary", summary["feature_set"], summary["model_type"], summary)
        return summary

    # ------------------------------------------------------------------ history
    def history(self, feature_set: str | None = None, days: float = 30) -> list[dict[str, Any]]:
        """Stored checks of the last ``days`` (oldest first), with their headline numbers."""
        since = self.clock.now() - timedelta(days=days)
        query = select(DriftReport).where(DriftReport.checked_at >= since)
        if feature_set:
            query = query.where(DriftReport.feature_set == validate_feature_set(feature_set))
        query = query.order_by(DriftReport.checked_at, DriftReport.id)
        with self.store.session() as session:
            return [_history_row(report) for report in session.scalars(query)]

    def _record(
        self, kind: str, feature_set: str, model_type: str | None, report: dict[str, Any]
    ) -> None:
        with self.store.session() as session:
            session.add(
                DriftReport(
                    kind=kind,
                    feature_set=feature_set,
                    model_type=model_type,
                    status=report.get("status", "success"),
                    severity=report.get("overall_severity", report.get("drift_severity")),
                    checked_at=self.clock.now(),
                    report=json_safe(report),
                )
            )


def _binned(where):  # type: ignore[no-untyped-def]
    """Predictions matching ``where`` with the equal-width bin of their P(up) as ``bin``.

    The bin is a CASE chain, not floor(), which SQLite lacks: [0, .1), ..., [.9, 1]. It is
    computed in a subquery so the outer GROUP BY names one column on every engine.
    """
    p = PredictionLog.probability_up
    whens = [(p < (index + 1) / CALIBRATION_BINS, index) for index in range(CALIBRATION_BINS - 1)]
    return (
        select(
            case(*whens, else_=CALIBRATION_BINS - 1).label("bin"),
            PredictionLog.probability_up,
            PredictionLog.actual_direction,
            PredictionLog.confidence,
            PredictionLog.prediction_correct,
        )
        .where(where)
        .subquery()
    )


def _feature_row(item: Any) -> dict[str, Any]:
    return {
        "feature": item.feature,
        "ks_statistic": item.ks_statistic,
        "ks_pvalue": item.ks_pvalue,
        "ks_pvalue_effective": item.ks_pvalue_effective,
        "ks_pvalue_adjusted": item.ks_pvalue_adjusted,
        "psi": item.psi,
        "psi_expected": item.psi_expected,
        "psi_noise_corrected": item.psi_excess,
        "drift_detected": item.drift_detected,
        "level": item.level,
        "reference_mean": item.reference_mean,
        "current_mean": item.current_mean,
        "reference_std": item.reference_std,
        "current_std": item.current_std,
        "autocorrelation": item.autocorrelation,
        "effective_reference_size": item.effective_reference_size,
        "effective_current_size": item.effective_current_size,
    }


def _drop_severity(drop: float) -> str:
    if drop >= HIGH_DROP:
        return "high"
    if drop >= MEDIUM_DROP:
        return "medium"
    return "low"


def _interval(stats: dict[str, Any]) -> list[float] | None:
    return list(wilson_interval(stats["correct"], stats["n"])) if stats["n"] else None


def _gap(stats: dict[str, Any]) -> float | None:
    if stats["avg_confidence"] is None or stats["accuracy"] is None:
        return None
    return stats["avg_confidence"] - stats["accuracy"]


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _windows_dict(start: datetime, split: datetime, end: datetime) -> dict[str, str]:
    return {
        "reference_start": start.isoformat(),
        "reference_end": split.isoformat(),
        "current_start": split.isoformat(),
        "current_end": end.isoformat(),
    }


def _recommendations(
    features: dict[str, Any], model: dict[str, Any], overall: str | None
) -> list[str]:
    notes: list[str] = []
    if overall in ("high", "medium"):
        notes.append(
            f"{overall.upper()}: {'significant' if overall == 'high' else 'moderate'} drift "
            f"detected for {features['feature_set']}/{model['model_type']}"
        )
    drifted = [row for row in features["drift_results"] if row["drift_detected"]]
    drifted.sort(key=lambda row: -(row["psi_noise_corrected"] or 0.0))
    if drifted:
        listed = ", ".join(
            f"{row['feature']} (PSI {row['psi']:.3f}, {row['psi_noise_corrected']:.3f} above "
            "its no-drift level)"
            for row in drifted[:3]
        )
        notes.append(
            f"{len(drifted)} of {features['features_tested']} monitored features drifted; "
            f"largest: {listed}"
        )
    if model["status"] == "success" and model["accuracy"]["drift_detected"]:
        notes.append(
            f"accuracy fell from {model['accuracy']['reference']:.3f} to "
            f"{model['accuracy']['current']:.3f} (one-sided p={model['accuracy']['p_value']:.3g})"
        )
    if overall in ("high", "medium"):
        notes.append(
            "ACTION: the daily retraining check will retrain this pair (drift severity at or "
            "above its threshold); run it now with POST /retrain/execute or "
            "`btcmlops retrain execute`"
        )
    elif overall == "low":
        notes.append("LOW: minor drift; monitor, no retraining needed yet")
    elif overall == "none":
        notes.append("STABLE: no significant drift; continue normal operations")
    for analysis, what in ((features, "feature"), (model, "model")):
        if analysis["status"] == "insufficient_data":
            notes.append(f"not enough data for the {what} check: {analysis.get('message', '')}")
    return notes


def _history_row(report: DriftReport) -> dict[str, Any]:
    body = report.report or {}
    feature = body.get("feature_drift", body) if report.kind != "model" else {}
    model = body.get("model_drift", body) if report.kind != "feature" else {}
    accuracy = model.get("accuracy") if isinstance(model.get("accuracy"), dict) else {}
    return {
        "id": report.id,
        "checked_at": report.checked_at.isoformat(),
        "kind": report.kind,
        "feature_set": report.feature_set,
        "model_type": report.model_type,
        "status": report.status,
        "severity": report.severity,
        "significant_drift_count": feature.get("significant_drift_count"),
        "features_tested": feature.get("features_tested"),
        "share_drifted": feature.get("share_drifted"),
        "accuracy_drop": model.get("accuracy_drop", (accuracy or {}).get("drop")),
    }
