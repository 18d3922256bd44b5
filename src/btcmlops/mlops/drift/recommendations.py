"""What to do about a drift summary, in words: the severity, the most drifted features, the
accuracy drop, the next step (``DriftDetector.get_drift_summary``'s ``recommendations``)."""

from __future__ import annotations

from btcmlops.mlops.drift.results import FeatureDriftReport, ModelDriftReport


def recommendations(
    features: FeatureDriftReport, model: ModelDriftReport, overall: str | None
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
