"""The drift monitor of the store: windows off the clock, the checks, their record and history.

Feature rows are available when their bar has closed, so with ``end = floor_hour(now)`` the
current window holds the rows ``[end - current_days, end)`` and the reference window the
``reference_days`` before it. Only the features the schema marks as monitored are tested; the
statistics are ``feature_drift``'s (see ``docs/drift.md``), the model's accuracy and
calibration ``model_drift``'s.

Every check is stored in ``drift_reports`` (unless ``record=False``) so trends can be plotted;
``latest`` reads back the newest stored summary of a pair with the two checks behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, select

from btcmlops.clock import Clock, floor_hour
from btcmlops.config import Settings
from btcmlops.db.models import DriftReport
from btcmlops.db.store import Store
from btcmlops.errors import InvalidInputError
from btcmlops.features.frames import load_feature_frame
from btcmlops.features.schema import (
    FEATURE_VERSION,
    feature_names,
    monitored_feature_names,
    validate_feature_set,
)
from btcmlops.jsonable import jsonable
from btcmlops.mlops.drift.feature_drift import (
    FeatureDrift,
    FeatureDriftResult,
    compare_features,
    history_is_used,
)
from btcmlops.mlops.drift.model_drift import check_model_drift
from btcmlops.mlops.drift.recommendations import recommendations
from btcmlops.mlops.drift.results import (
    DriftSummaryReport,
    DriftWindows,
    FeatureDistribution,
    FeatureDriftReport,
    FeatureDriftRow,
    ModelDriftReport,
    StoredDriftCheck,
)
from btcmlops.mlops.results import JsonObject
from btcmlops.modeling.feature_cache import FeatureFrameCache
from btcmlops.modeling.model_types import validate_model_type
from btcmlops.severity import severity_rank


@dataclass(frozen=True)
class StoredCheck:
    """A stored drift summary of a pair and the feature and model checks recorded with it.

    The three reports are as stored: the shapes of ``get_drift_summary``,
    ``detect_feature_drift`` and ``detect_model_drift``, times as ISO strings.
    """

    id: int
    checked_at: datetime
    feature_set: str
    model_type: str
    summary: JsonObject
    features: JsonObject | None
    model: JsonObject | None


class DriftDetector:
    """Feature and model drift of the store's data, recorded in ``drift_reports``."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        # the month of rows a daily check reads, decoded once across checks of this process
        self.frames = FeatureFrameCache(store)
        # per feature set, the latest comparison and what it was made of (windows, settings,
        # row ids): a check of the same rows within the hour reuses it
        self._comparisons: dict[str, tuple[tuple[Any, ...], FeatureDriftResult]] = {}

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
    ) -> FeatureDriftReport:
        """KS and PSI per monitored feature, reference window vs current window."""
        feature_set = validate_feature_set(feature_set)
        reference_days, current_days, start, split, end = self._windows(
            reference_days, current_days
        )
        names = monitored_feature_names(feature_set)
        settings = self.settings
        # autocorrelation times come from the weeks before the reference (compare_features)
        history_start = start - timedelta(days=settings.drift_autocorrelation_days)
        stored = self.frames.read(feature_set, FEATURE_VERSION, names, start=history_start, end=end)
        frame = stored.frame
        history = frame[frame.index < start]
        reference = frame[(frame.index >= start) & (frame.index < split)]
        current = frame[frame.index >= split]
        parameters = (
            settings.drift_psi_bins,
            settings.drift_alpha,
            settings.drift_psi_effect_floor,
            settings.drift_min_samples,
        )
        # The daily drift check and the retraining policy right after it (and the weekly
        # retraining) ask about the same windows: the same rows give the same comparison.
        key = (tuple(names), history_start, start, split, end, parameters, stored.row_ids)
        remembered = self._comparisons.get(feature_set)
        if stored.row_ids is not None and remembered is not None and remembered[0] == key:
            result = remembered[1]
        else:
            bins, alpha, psi_effect_floor, min_samples = parameters
            result = compare_features(
                reference,
                current,
                names,
                bins=bins,
                alpha=alpha,
                psi_effect_floor=psi_effect_floor,
                min_samples=min_samples,
                history=history,
            )
            self._comparisons[feature_set] = (key, result)
        results = [_feature_row(item) for item in result.drift_results if item.tested]
        tested = max(result.features_tested, 1)
        analysis: FeatureDriftReport = {
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
    ) -> FeatureDistribution:
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
    ) -> ModelDriftReport:
        """Accuracy and calibration of the champion's predictions, reference vs current window.

        Both windows hold the current champion's served predictions (``model_drift``).
        """
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        reference_days, current_days, start, split, _ = self._windows(reference_days, current_days)
        now = self.clock.now()
        check = check_model_drift(
            self.store, self.settings, feature_set, model_type, start=start, split=split, now=now
        )
        analysis: ModelDriftReport = {
            "status": check.status,
            "feature_set": feature_set,
            "model_type": model_type,
            "reference_period_days": reference_days,
            "current_period_days": current_days,
            "reference_predictions": check.reference_predictions,
            "current_predictions": check.current_predictions,
            "min_predictions": check.min_predictions,
            "windows": _windows_dict(start, split, now),
            "model_version": check.model_version,
            "timestamp": now,
        }
        if check.window_note is not None:
            analysis["window_note"] = check.window_note
        if check.message is not None:
            analysis["message"] = check.message
        analysis["accuracy"] = check.accuracy
        analysis["confidence"] = check.confidence
        analysis["calibration"] = check.calibration
        analysis["estimated_accuracy"] = check.estimated_accuracy
        analysis["drift_severity"] = check.drift_severity
        if record:
            self._record("model", feature_set, model_type, analysis)
        return analysis

    # ------------------------------------------------------------------ summary
    def get_drift_summary(
        self,
        feature_set: str,
        model_type: str,
        reference_days: float | None = None,
        current_days: float | None = None,
        *,
        record: bool = True,
    ) -> DriftSummaryReport:
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
        overall = max(severities, key=severity_rank) if severities else None
        summary: DriftSummaryReport = {
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
            "recommendations": recommendations(features, model, overall),
            "timestamp": self.clock.now(),
        }
        if record:
            self._record("summary", summary["feature_set"], summary["model_type"], summary)
        return summary

    # ------------------------------------------------------------------ history
    def history(self, feature_set: str | None = None, days: float = 30) -> list[StoredDriftCheck]:
        """Stored checks of the last ``days`` (oldest first), with their headline numbers."""
        since = self.clock.now() - timedelta(days=days)
        query = select(DriftReport).where(DriftReport.checked_at >= since)
        if feature_set:
            query = query.where(DriftReport.feature_set == validate_feature_set(feature_set))
        query = query.order_by(DriftReport.checked_at, DriftReport.id)
        with self.store.session() as session:
            return [_history_row(report) for report in session.scalars(query)]

    def latest(self, feature_set: str, model_type: str) -> StoredCheck | None:
        """The newest stored drift summary of the pair up to now, with its two checks.

        ``get_drift_summary`` records the feature check and the model check just before the
        summary, so they are the newest of their kind stored before it. ``None`` when the pair
        has no stored summary yet.
        """
        feature_set = validate_feature_set(feature_set)
        model_type = validate_model_type(model_type)
        of_pair = (DriftReport.feature_set == feature_set, DriftReport.model_type == model_type)
        with self.store.session() as session:
            summary = session.scalar(
                select(DriftReport)
                .where(
                    DriftReport.kind == "summary",
                    *of_pair,
                    DriftReport.checked_at <= self.clock.now(),
                )
                .order_by(DriftReport.checked_at.desc(), DriftReport.id.desc())
                .limit(1)
            )
            if summary is None:
                return None
            before = DriftReport.id < summary.id
            return StoredCheck(
                id=summary.id,
                checked_at=summary.checked_at,
                feature_set=feature_set,
                model_type=model_type,
                summary=summary.report,
                features=session.scalar(_newest_report("feature", before, of_pair[0])),
                model=session.scalar(_newest_report("model", before, *of_pair)),
            )

    def _record(
        self,
        kind: str,
        feature_set: str,
        model_type: str | None,
        report: FeatureDriftReport | ModelDriftReport | DriftSummaryReport,
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
                    report=jsonable(report),
                )
            )


def _feature_row(item: FeatureDrift) -> FeatureDriftRow:
    return {
        "feature": item.feature,
        "ks_statistic": item.ks_statistic,
        "ks_pvalue": item.ks_pvalue,
        "ks_pvalue_effective": item.ks_pvalue_effective,
        "ks_pvalue_adjusted": item.ks_pvalue_adjusted,
        "ks_pvalue_exact": item.ks_pvalue_exact,
        "ks_pvalue_adjusted_exact": item.ks_pvalue_adjusted_exact,
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


def _windows_dict(start: datetime, split: datetime, end: datetime) -> DriftWindows:
    return {
        "reference_start": start.isoformat(),
        "reference_end": split.isoformat(),
        "current_start": split.isoformat(),
        "current_end": end.isoformat(),
    }


def _newest_report(kind: str, *where: Any) -> Select[tuple[JsonObject]]:
    return (
        select(DriftReport.report)
        .where(DriftReport.kind == kind, *where)
        .order_by(DriftReport.id.desc())
        .limit(1)
    )


def _history_row(report: DriftReport) -> StoredDriftCheck:
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
