"""Leases: one holder at a time, lapsing when not renewed, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from btcmlops.clock import ManualClock
from btcmlops.mlops.leases import Leases

TTL = timedelta(seconds=60)


def test_only_one_holder_at_a_time(store, start_time):
    wall = ManualClock(start_time)
    first, second = Leases(store, "a", wall), Leases(store, "b", wall)
    assert first.acquire("retrain:vader:rf", TTL, job_id="job-1")
    assert not second.acquire("retrain:vader:rf", TTL, job_id="job-2")
    assert second.current("retrain:vader:rf").job_id == "job-1"
    assert first.acquire("retrain:vader:rf", TTL, job_id="job-1")  # re-entrant for its holder


def test_a_lapsed_lease_can_be_taken_over(store, start_time):
    wall = ManualClock(start_time)
    first, second = Leases(store, "a", wall), Leases(store, "b", wall)
    assert first.acquire("scheduler", TTL)
    wall.advance(seconds=59)
    assert not second.acquire("scheduler", TTL)
    assert first.renew("scheduler", TTL)
    wall.advance(seconds=61)
    assert second.acquire("scheduler", TTL)
    assert not first.renew("scheduler", TTL)
    assert second.current("scheduler").holder == "b"


def test_release_frees_the_lease_only_for_its_holder(store, start_time):
    wall = ManualClock(start_time)
    first, second = Leases(store, "a", wall), Leases(store, "b", wall)
    first.acquire("x", TTL)
    second.release("x")
    assert first.current("x").holder == "a"
    first.release("x")
    assert first.current("x") is None
    assert second.acquire("x", TTL)


def test_many_threads_racing_for_a_lease_get_exactly_one_winner(store):
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(name: str) -> None:
        leases = Leases(store, name)
        barrier.wait()
        if leases.acquire("contested", TTL):
            winners.append(name)

    threads = [threading.Thread(target=race, args=(f"h{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_held_context_releases_at_the_end(store):
    leases = Leases(store, "a")
    with leases.held("job", TTL) as got:
        assert got
        assert not Leases(store, "b").acquire("job", TTL)
    assert Leases(store, "b").acquire("job", TTL)
