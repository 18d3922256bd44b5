"""What the sequential detector's ``fit`` learns: the :class:`Calibration` and how it is fitted.

The reference's sorted values and deviations, the channels worth watching, each channel's
null scale and degrees of freedom from an in-sample EWMA run over the history and the
reference, the breadth statistic's law, and both thresholds for the false-alarm budget.
The method and its references are in :mod:`btcmlops.mlops.drift.sequential`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from btcmlops.errors import InvalidInputError
from btcmlops.mlops.drift.sequential_evidence import (
    breadth_scores,
    ewma_path,
    rank_scores,
    relative_evidence,
    studentize,
)
from btcmlops.mlops.drift.upcrossings import (
    distinct_series,
    lag_one,
    level_for_rate,
    student_dof,
)
from btcmlops.mlops.drift.volatility import VolatilityChannel, fit_channel

MIN_FEATURE_VALUES = 24  # finite reference values a feature needs to be watched
_CALM_QUANTILE = 0.5  # evidence below this quantile of the calibration run is "no change"


@dataclass(frozen=True)
class Calibration:
    """Everything ``fit`` learns; shared, never changed, by detectors made by ``with_state``."""

    features: tuple[str, ...]
    second_moments: np.ndarray  # calibration mean of each channel's squared score
    located: np.ndarray  # True for location channels (studentized)
    effective: np.ndarray  # independent calibration values behind each channel's scale
    watched: np.ndarray  # indices of the watched features in the input row
    reference: np.ndarray  # (features, n) sorted values, NaN-padded
    deviations: np.ndarray  # (features, n) sorted |value - median|, NaN-padded
    medians: np.ndarray
    counts: np.ndarray  # finite reference values per watched feature
    channels: np.ndarray  # indices into the 2 * features scores that are watched
    scales: np.ndarray  # null standard deviation of each channel's EWMA
    breadth_mean: float
    breadth_dof: float  # h
    breadth_denominator_dof: float  # m, the median effective count of the channels
    channel_threshold: float
    breadth_threshold: float
    calm_level: float = 0.5  # the evidence's median on the calibration run
    distinct_series: int = field(default=0)
    volatility: VolatilityChannel | None = None  # needs the hourly return and range features


def _sorted_padded(columns: list[np.ndarray]) -> np.ndarray:
    width = max(len(c) for c in columns)
    padded = np.full((len(columns), width), np.nan)
    for j, column in enumerate(columns):
        padded[j, : len(column)] = np.sort(column)
    return padded


def calibrate(
    features: tuple[str, ...],
    reference: np.ndarray,
    history: np.ndarray,
    smoothing: float,
    mtbf_hours: float,
) -> Calibration:
    tables = _reference_tables(features, reference)
    scores = rank_scores(tables, np.vstack([history, reference])[:, tables.watched])
    # A channel whose score hardly varies (a nearly constant feature) carries no evidence.
    channels = np.flatnonzero(scores.std(axis=0) > 0.1)
    if channels.size == 0:
        raise InvalidInputError("every feature is (nearly) constant in the reference")
    # The false-alarm budget is shared equally by the statistics: per channel, breadth and,
    # with the hourly return and range among the features, the volatility channel.
    volatility = fit_channel(
        features,
        np.vstack([history, reference]),
        smoothing_floor=smoothing,
        rate=1.0 / (3.0 * mtbf_hours),
    )
    budget = 1.0 / ((2.0 if volatility is None else 3.0) * mtbf_hours)
    scaled, path = _fit_scales(tables, scores[:, channels], channels, smoothing)
    thresholded = _fit_thresholds(scaled, path / scaled.scales, budget)
    evidence = relative_evidence(thresholded, path)
    if volatility is not None:  # both runs end at the last calibration hour
        common = min(evidence.size, volatility.calibration_evidence.size)
        evidence = np.maximum(evidence[-common:], volatility.calibration_evidence[-common:])
    calm_level = float(np.quantile(evidence, _CALM_QUANTILE))
    return replace(thresholded, calm_level=calm_level, volatility=volatility)


def _reference_tables(features: tuple[str, ...], reference: np.ndarray) -> Calibration:
    """The reference's sorted values and deviations; every channel watched, unit scales."""
    finite = np.isfinite(reference).sum(axis=0)
    watched = np.flatnonzero(finite >= MIN_FEATURE_VALUES)
    if watched.size == 0:
        raise InvalidInputError(
            f"no feature has {MIN_FEATURE_VALUES} finite values in the reference"
        )
    columns = [reference[np.isfinite(reference[:, j]), j] for j in watched]
    medians = np.array([np.median(c) for c in columns])
    channels = 2 * watched.size
    return Calibration(
        features=features,
        watched=watched,
        reference=_sorted_padded(columns),
        deviations=_sorted_padded([np.abs(c - m) for c, m in zip(columns, medians, strict=True)]),
        medians=medians,
        counts=np.array([len(c) for c in columns], dtype=float),
        channels=np.arange(channels),
        scales=np.ones(channels),
        second_moments=np.ones(channels),
        located=np.zeros(channels, dtype=bool),
        effective=np.full(channels, np.inf),
        breadth_mean=1.0,
        breadth_dof=1.0,
        breadth_denominator_dof=np.inf,
        channel_threshold=1.0,
        breadth_threshold=1.0,
    )


def _fit_scales(
    tables: Calibration, scores: np.ndarray, channels: np.ndarray, smoothing: float
) -> tuple[Calibration, np.ndarray]:
    """Each channel's null scale and degrees of freedom from the in-sample EWMA run; returns
    the calibration so far and the run's (studentized) EWMA path after its burn-in."""
    burn_in = min(math.ceil(3.0 / smoothing), scores.shape[0] // 4)
    second_moments = np.mean(scores**2, axis=0)
    studentizing = replace(
        tables,
        channels=channels,
        second_moments=second_moments,
        located=channels < tables.watched.size,
    )
    seconds = ewma_path(scores**2, smoothing, start=second_moments)
    path = studentize(studentizing, ewma_path(scores, smoothing), seconds)[burn_in:]
    iid_scale = math.sqrt(smoothing / (2.0 - smoothing)) * scores.std(axis=0)
    scales = np.maximum(np.sqrt(np.mean(path**2, axis=0)), iid_scale)
    # The RMS of a persistent EWMA over a few weeks rests on few independent values, and
    # scores whose spread clusters in time make it heavy-tailed: a new value over that scale
    # is read as a Student-t, not normal.
    effective = student_dof(path, path / scales)
    return replace(studentizing, scales=scales, effective=effective), path


def _fit_thresholds(scaled: Calibration, z: np.ndarray, budget: float) -> Calibration:
    """The breadth's law and both thresholds, ``budget`` false alarms per hour each."""
    correlation = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.ones((1, 1))
    representatives = distinct_series(np.nan_to_num(correlation, nan=0.0))
    channel_threshold = level_for_rate(lag_one(z)[representatives], budget, two_sided=True)
    # The effective number of independent channels from the eigenvalues of their second-moment
    # correlation, (sum l)^2 / sum l^2 = C^2 / sum rho^2; more stable than the variance of
    # the mean Z^2 over a few weeks, and the correlation's sampling noise only lowers it
    # (a heavier tail).
    second = (z.T @ z) / z.shape[0]
    diagonal = np.sqrt(np.diag(second))
    rho = second / np.outer(diagonal, diagonal)
    with_breadth = replace(
        scaled,
        breadth_mean=float(np.mean(z**2)),
        breadth_dof=float(z.shape[1] ** 2 / np.sum(rho**2)),
        breadth_denominator_dof=float(np.median(scaled.effective)),
    )
    breadth_lag_one = lag_one(breadth_scores(with_breadth, z)[:, None])
    return replace(
        with_breadth,
        channel_threshold=channel_threshold,
        breadth_threshold=level_for_rate(breadth_lag_one, budget, two_sided=False),
        distinct_series=len(representatives),
    )
