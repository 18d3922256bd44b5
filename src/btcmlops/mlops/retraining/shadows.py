"""Shadow models: who predicts beside the champion, and the evidence they accrue.

Per (feature set, model type), at most ``shadow_max`` versions have status ``shadow``: the
champion that the latest deployment replaced (the rollback check judges the new champion
against it) and the best kept challengers. Every hour each predicts the champion's feature
row; the outcome job scores them; nothing of theirs reaches a client.

A challenger's evidence is its offline comparison with the current champion (the test hours
of the retraining that trained it, when that champion is still the champion) plus every
live hour both have predicted since. The daily review promotes the best challenger that the
rule of :mod:`btcmlops.mlops.retraining.promotion` accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np
import pandas as pd

from btcmlops.clock import Clock
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.mlops.retraining import queries
from btcmlops.mlops.retraining.paired_tests import (
    group_sequential_boundaries,
    log_mixture_e_value,
    log_mixture_e_values,
)
from btcmlops.mlops.retraining.promotion import PairedCounts, PromotionDecision, decide_promotion
from btcmlops.mlops.retraining.results import EvidencePoint, ShadowEvidenceDict, ShadowRole
from btcmlops.modeling.registry import ModelRegistry
from btcmlops.modeling.registry_records import (
    ARCHIVED,
    CANDIDATE,
    SHADOW,
    ChampionChangeInfo,
    ModelVersionInfo,
)

PREVIOUS_CHAMPION: Final = "previous_champion"
CHALLENGER: Final = "challenger"
JUDGED_BY_ROLLBACK = ("deploy", "promote")  # actions after which the rollback check runs


@dataclass(frozen=True)
class ShadowEvidence:
    """One shadow model against the current champion on paired hours.

    ``statistic`` is measured against ``bar`` on the shadow's ``scale``: a challenger's wins
    on the discordant hours against the trial's boundary at its current look, the previous
    champion's log e-value against ``log(1 / rollback alpha)``. ``margin`` is the difference
    (at or above 0: promote, or roll back). ``path`` has one point per look.
    """

    version: str
    role: ShadowRole
    since: datetime
    offline_hours: int
    live_hours: int
    scale: str
    statistic: float
    bar: float
    decision: PromotionDecision | None
    trial_over: bool = False
    path: list[EvidencePoint] = field(default_factory=list)

    @property
    def margin(self) -> float:
        return self.statistic - self.bar

    def as_dict(self) -> ShadowEvidenceDict:
        return {
            "version": self.version,
            "role": self.role,
            "since": self.since.isoformat(),
            "offline_hours": self.offline_hours,
            "live_hours": self.live_hours,
            "scale": self.scale,
            "statistic": self.statistic,
            "bar": self.bar,
            "margin": self.margin,
            "trial_over": self.trial_over,
            "decision": None if self.decision is None else self.decision.evidence(),
            "path": self.path,
        }


@dataclass(frozen=True)
class ChampionLook:
    """The champion as every shadow's evidence reads it at one instant: when it took over,
    the previous champion the rollback check judges it against, and (read once for several
    shadows) its resolved live hours since it took over."""

    champion: ModelVersionInfo
    now: datetime
    took_over: datetime | None
    judged_by_rollback: str | None
    outcomes: queries.VersionOutcomes | None = None


class Shadows:
    """The shadow set of every pair, its evidence, and the daily promotion review."""

    def __init__(
        self, store: Store, clock: Clock, settings: Settings, registry: ModelRegistry
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.registry = registry

    # ----------------------------------------------------------------------- membership
    def latest_change(self, feature_set: str, model_type: str) -> ChampionChangeInfo | None:
        history = self.registry.champion_history(feature_set, model_type)
        return history[-1] if history else None

    def judged_by_rollback(self, feature_set: str, model_type: str) -> str | None:
        """The shadowed previous champion that the rollback check compares with, if any."""
        latest = self.latest_change(feature_set, model_type)
        if latest is None or latest.action not in JUDGED_BY_ROLLBACK:
            return None
        return latest.previous_version

    def admit(self, version: str) -> None:
        """Let ``version`` predict in shadow, then keep the pair's best ``shadow_max``."""
        info = self.registry.get(version)
        self.registry.set_status(version, SHADOW)
        self.trim(info.feature_set, info.model_type)

    def promote_by_hand(self, version: str, *, actor: str, reason: str) -> ModelVersionInfo:
        """A manual promotion: the displaced champion keeps predicting in shadow, so the
        rollback check judges the new one on paired live hours as after a deployment."""
        info = self.registry.promote(version, actor=actor, reason=reason, displaced_status=SHADOW)
        self.trim(info.feature_set, info.model_type)
        return info

    def trim(self, feature_set: str, model_type: str) -> list[str]:
        """Keep the previous champion and the challengers with the most evidence."""
        shadows = self.registry.shadows(feature_set, model_type)
        limit = self.settings.shadow_max
        if len(shadows) <= limit:
            return []
        previous = self.judged_by_rollback(feature_set, model_type)
        champion = self.registry.champion(feature_set, model_type)
        look = None if champion is None else self.look_at(champion, with_outcomes=True)

        def rank(model: ModelVersionInfo) -> tuple[int, float, float]:
            if model.version == previous:
                return (1, 0.0, 0.0)
            score = 0.0
            if champion is not None:
                score = self.evidence_of(model, champion, look=look).margin
            return (0, score, model.created_at.timestamp())

        ordered = sorted(shadows, key=rank, reverse=True)
        dropped = ordered[limit:]
        former_champions = {
            change.version for change in self.registry.champion_history(feature_set, model_type)
        }
        for model in dropped:
            was_champion = model.version in former_champions
            self.registry.set_status(model.version, ARCHIVED if was_champion else CANDIDATE)
        return [model.version for model in dropped]

    # ------------------------------------------------------------------------ evidence
    def look_at(self, champion: ModelVersionInfo, *, with_outcomes: bool = False) -> ChampionLook:
        """What the evidence of every shadow reads of ``champion``, read once now."""
        now = self.clock.now()
        took_over = self.took_over(champion)
        outcomes = None
        if with_outcomes and took_over is not None:
            outcomes = queries.version_outcomes(self.store, champion.version, took_over, now)
        return ChampionLook(
            champion=champion,
            now=now,
            took_over=took_over,
            judged_by_rollback=self.judged_by_rollback(champion.feature_set, champion.model_type),
            outcomes=outcomes,
        )

    def evidence_of(
        self,
        shadow: ModelVersionInfo,
        champion: ModelVersionInfo,
        *,
        with_path: bool = False,
        look: ChampionLook | None = None,
    ) -> ShadowEvidence:
        """``shadow`` against ``champion`` on their paired hours, at its latest look (at
        ``look``'s instant, with what it read of the champion, when given)."""
        look = look if look is not None else self.look_at(champion)
        now, took_over = look.now, look.took_over
        since = max(took_over, shadow.created_at) if took_over else shadow.created_at
        judged_by_rollback = shadow.version == look.judged_by_rollback
        live = queries.paired_hours(
            self.store,
            self.settings.symbol,
            shadow.version,
            champion.version,
            since,
            now,
            with_last_hour=not judged_by_rollback,  # the rollback test reads the two models only
            second_outcomes=look.outcomes,
        )
        if judged_by_rollback:
            return self._rollback_evidence(shadow, since, live, with_path)
        offline = PairedCounts()
        run = queries.run_of_challenger(self.store, shadow.version)
        if run is not None and run.champion_version == champion.version and run.evidence:
            offline = PairedCounts(**run.evidence.get("counts", {}))
        # a look after the offline hours, then one at every midnight (the daily review)
        midnights = pd.date_range(
            pd.Timestamp(since).floor("D") + pd.Timedelta(days=1), pd.Timestamp(now), freq="D"
        )
        ends = np.searchsorted(
            live.target_ts.as_unit("us").asi8, midnights.as_unit("us").asi8, side="right"
        )
        new_right, old_right = live.right()
        wins = offline.challenger_only + np.r_[0, np.cumsum(new_right & ~old_right)][ends]
        losses = offline.champion_only + np.r_[0, np.cumsum(old_right & ~new_right)][ends]
        wins = np.r_[offline.challenger_only, wins].astype(int)
        losses = np.r_[offline.champion_only, losses].astype(int)
        discordant = (wins + losses).tolist()
        counts = offline + live.counts(upto=int(ends[-1]) if len(ends) else 0)
        trial_looks = self.settings.promotion_trial_days + 1
        decision = decide_promotion(
            counts,
            alpha=self.settings.promotion_alpha,
            earlier_discordant=discordant[:-1],
            trial_looks=trial_looks,
        )
        path: list[EvidencePoint] = []
        if with_path:
            bounds = group_sequential_boundaries(
                discordant, alpha=self.settings.promotion_alpha, trial_looks=trial_looks
            )
            at = [None, *(moment.isoformat() for moment in midnights)]
            hours = [offline.hours, *(offline.hours + int(end) for end in ends)]
            path = [
                _point(at[look], hours[look], int(wins[look]), bounds[look])
                for look in range(len(discordant))
            ]
        return ShadowEvidence(
            version=shadow.version,
            role=CHALLENGER,
            since=since,
            offline_hours=offline.hours,
            live_hours=len(live),
            scale="wins on discordant hours (trial boundary)",
            statistic=float(decision.test.wins),
            bar=float(decision.test.boundary),
            decision=decision,
            trial_over=decision.test.over,
            path=path,
        )

    def _rollback_evidence(
        self,
        shadow: ModelVersionInfo,
        since: datetime,
        live: queries.PairedHours,
        with_path: bool,
    ) -> ShadowEvidence:
        """The previous champion, judged by the rollback check's e-value."""
        counts = live.counts()
        bar = -math.log(self.settings.auto_rollback_alpha)
        path: list[EvidencePoint] = []
        if with_path and len(live):
            new_right, old_right = live.right()
            wins = np.cumsum(new_right & ~old_right)
            losses = np.cumsum(old_right & ~new_right)
            days = live.target_ts.floor("D")
            last_of_day = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
            values = log_mixture_e_values(
                wins[last_of_day], wins[last_of_day] + losses[last_of_day]
            )
            path = [
                _point(live.target_ts[index].isoformat(), int(index + 1), float(value), bar)
                for index, value in zip(last_of_day, values, strict=True)
            ]
        return ShadowEvidence(
            version=shadow.version,
            role=PREVIOUS_CHAMPION,
            since=since,
            offline_hours=0,
            live_hours=len(live),
            scale="log e-value (rollback test)",
            statistic=log_mixture_e_value(
                counts.challenger_only, counts.challenger_only + counts.champion_only
            ),
            bar=bar,
            decision=None,
            path=path,
        )

    def took_over(self, champion: ModelVersionInfo) -> datetime | None:
        """When ``champion``, the pair's current champion, took over."""
        return queries.champion_since(self.store, champion.feature_set, champion.model_type)

    def report(self, feature_set: str, model_type: str) -> list[ShadowEvidence]:
        """Every shadow of the pair with its evidence and its path over time."""
        champion = self.registry.champion(feature_set, model_type)
        if champion is None:
            return []
        return [
            self.evidence_of(shadow, champion, with_path=True)
            for shadow in self.registry.shadows(feature_set, model_type)
        ]

    def review(
        self, feature_set: str, model_type: str
    ) -> tuple[tuple[ModelVersionInfo, ShadowEvidence] | None, list[str]]:
        """The daily look: the challenger the rule accepts with the widest margin (if any),
        and the challengers whose trial ended without a promotion, taken out of the shadow
        set when none is promoted. Each shadow's evidence is read once."""
        champion = self.registry.champion(feature_set, model_type)
        if champion is None:
            return None, []
        passing, finished = [], []
        shadows = self.registry.shadows(feature_set, model_type)
        look = self.look_at(champion, with_outcomes=len(shadows) > 1) if shadows else None
        for shadow in shadows:
            evidence = self.evidence_of(shadow, champion, look=look)
            if evidence.decision is not None and evidence.decision.promote:
                passing.append((shadow, evidence))
            elif evidence.trial_over:
                finished.append(shadow.version)
        if passing:
            return max(passing, key=lambda item: item[1].margin), []
        for version in finished:
            self.registry.set_status(version, CANDIDATE)
        return None, finished


def _point(at: str | None, hours: int, statistic: float, bar: float) -> EvidencePoint:
    return {"at": at, "hours": hours, "statistic": statistic, "bar": bar, "margin": statistic - bar}
