from datetime import UTC, datetime, timedelta

import pytest

from btcmlops.clock import FixedClock, ManualClock, SystemClock, floor_hour, parse_utc
from btcmlops.config import Settings
from btcmlops.errors import InvalidInputError


def test_settings_without_now_use_the_wall_clock():
    clock = Settings(_env_file=None).make_clock()
    assert isinstance(clock, SystemClock)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_btcmlops_now_pins_the_clock(monkeypatch):
    monkeypatch.setenv("BTCMLOPS_NOW", "2021-07-30T12:34:56Z")
    clock = Settings(_env_file=None).make_clock()
    assert isinstance(clock, FixedClock)
    assert clock.now() == datetime(2021, 7, 30, 12, 34, 56, tzinfo=UTC)
    assert clock.now() == clock.now()


def test_naive_pinned_instant_is_taken_as_utc(monkeypatch):
    monkeypatch.setenv("BTCMLOPS_NOW", "2021-07-30 12:00")
    assert Settings(_env_file=None).make_clock().now().tzinfo == UTC


def test_offset_instants_are_converted_to_utc():
    assert parse_utc("2024-03-01T12:00:00+02:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)


def test_invalid_instant_names_the_expected_format():
    with pytest.raises(InvalidInputError, match="ISO-8601"):
        parse_utc("yesterday")


def test_manual_clock_moves_forward_only():
    clock = ManualClock(parse_utc("2024-01-01T00:00Z"))
    assert clock.advance(hours=2) == parse_utc("2024-01-01T02:00Z")
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(parse_utc("2024-01-01T01:00Z"))


def test_floor_hour_truncates_to_the_utc_hour():
    assert floor_hour(parse_utc("2024-01-01T05:59:59.9Z")) == parse_utc("2024-01-01T05:00Z")
