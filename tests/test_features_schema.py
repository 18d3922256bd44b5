"""The feature schema: names, families, meanings, drift flags and the longest window."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from btcmlops.errors import InvalidInputError
from btcmlops.features.schema import (
    FEATURE_SETS,
    FEATURE_VERSION,
    MAX_LOOKBACK_HOURS,
    SCORER_FOR_SET,
    feature_names,
    feature_specs,
    monitored_feature_names,
    validate_feature_set,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "features.md"
LEVELS = {
    "close",
    "volume",
    "sma_24h",
    "sma_168h",
    "ema_12h",
    "ema_26h",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr_14h",
}


def by_family(feature_set, family):
    return [spec.name for spec in feature_specs(feature_set) if spec.family == family]


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_each_feature_set_has_about_a_hundred_uniquely_named_features(feature_set):
    names = feature_names(feature_set)
    assert 90 <= len(names) <= 130
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in names)


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_every_feature_has_a_known_family_and_a_one_line_meaning(feature_set):
    for spec in feature_specs(feature_set):
        assert spec.family in {"price", "sentiment", "calendar"}, spec
        assert spec.meaning.strip() and "\n" not in spec.meaning, spec
        assert isinstance(spec.monitored, bool)


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_calendar_features_and_levels_are_not_monitored(feature_set):
    specs = {spec.name: spec for spec in feature_specs(feature_set)}
    unmonitored = {name for name, spec in specs.items() if not spec.monitored}
    assert unmonitored == set(by_family(feature_set, "calendar")) | LEVELS
    assert set(monitored_feature_names(feature_set)) == set(specs) - unmonitored
    assert all(specs[name].monitored for name in by_family(feature_set, "sentiment"))


def test_both_sets_share_price_and_calendar_features_and_differ_only_in_sentiment():
    for family in ("price", "calendar"):
        assert by_family("vader", family) == by_family("finbert", family)
    vader, finbert = by_family("vader", "sentiment"), by_family("finbert", "sentiment")
    assert set(vader) < set(finbert)
    assert all(name.startswith("sent_") for name in finbert)


def test_only_finbert_has_confidence_weighted_variants():
    extra = set(feature_names("finbert")) - set(feature_names("vader"))
    assert {"sent_cw_mean_1h", "sent_cw_mean_6h", "sent_cw_mean_24h"} <= extra
    assert all("cw_" in name or "confiden" in name for name in extra)
    assert not any("cw_" in name or "confiden" in name for name in feature_names("vader"))


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_the_families_the_issue_asks_for_are_all_there(feature_set):
    names = set(feature_names(feature_set))
    for hours in (1, 2, 3, 6, 12, 24, 168):
        assert {f"ret_{hours}h", f"log_ret_{hours}h"} <= names
    for hours in (6, 24, 168):
        assert f"volatility_{hours}h" in names
    assert {"rsi_14h", "macd", "macd_signal", "macd_hist", "bb_position_20h"} <= names
    assert {"bb_width_20h", "atr_14h", "close_to_sma_24h", "close_to_ema_12h"} <= names
    assert {"volume_ratio_24h", "volume_change_1h"} <= names
    for hours in (1, 6, 24):
        for statistic in ("mean", "std", "min", "max", "count"):
            assert f"sent_{statistic}_{hours}h" in names
    assert {"sent_velocity_1h", "sent_mean_change_24h", "sent_momentum_6h_24h"} <= names
    assert {"sent_strong_pos_share_24h", "sent_strong_neg_share_24h", "sent_ewm_6h"} <= names
    assert {"hour_of_day", "day_of_week", "hour_sin", "hour_cos", "is_weekend"} <= names
    assert {"session_asia", "session_europe", "session_us"} <= names


def test_max_lookback_covers_every_window_a_feature_names():
    for feature_set in FEATURE_SETS:
        for spec in feature_specs(feature_set):
            assert 0 <= spec.lookback_hours <= MAX_LOOKBACK_HOURS, spec
            for hours in re.findall(r"_(\d+)h(?=_|$)", spec.name):
                # A window of W hours reads back W (a return) or W - 1 (a mean) hours.
                assert spec.lookback_hours >= int(hours) - 1, spec
                assert int(hours) <= MAX_LOOKBACK_HOURS, spec
    assert (
        max(spec.lookback_hours for name in FEATURE_SETS for spec in feature_specs(name))
        == MAX_LOOKBACK_HOURS
    )
    assert MAX_LOOKBACK_HOURS >= 168


def test_unknown_feature_set_is_refused_naming_the_allowed_values():
    assert validate_feature_set("VADER ") == "vader"
    with pytest.raises(InvalidInputError, match="vader, finbert"):
        validate_feature_set("bert")
    with pytest.raises(InvalidInputError, match="unknown feature set"):
        feature_names("all")


def test_every_set_names_the_scorer_that_feeds_it_and_a_version():
    assert set(SCORER_FOR_SET) == set(FEATURE_SETS)
    assert SCORER_FOR_SET["finbert"] == "finbert" and SCORER_FOR_SET["vader"] == "vader"
    assert FEATURE_VERSION.strip()


def test_every_feature_is_documented_in_docs_features_md():
    documented = DOCS.read_text(encoding="utf-8")
    missing = [
        name
        for feature_set in FEATURE_SETS
        for name in feature_names(feature_set)
        if f"`{name}`" not in documented
    ]
    assert missing == []


@pytest.mark.parametrize("feature_set", ["vader", "finbert"])
def test_levels_are_stored_but_not_model_inputs(feature_set):
    from btcmlops.features.schema import model_feature_names

    inputs = set(model_feature_names(feature_set))
    specs = {spec.name: spec for spec in feature_specs(feature_set)}
    for level in ("close", "volume", "sma_24h", "sma_168h", "macd", "atr_14h"):
        assert level in specs and level not in inputs
    assert {"hour_sin", "ret_1h", "sent_mean_6h"} <= inputs
    assert all(specs[name].family != "price" or specs[name].monitored for name in inputs)
