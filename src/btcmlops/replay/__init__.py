"""Replays: the service's own jobs driven hour by hour on a pinned clock, outside the live loop.

:mod:`~btcmlops.replay.demo` replays a simulated market (``btcmlops demo``);
:mod:`~btcmlops.replay.backtest` replays real history from files and sets the policy beside
the simple alternatives (``btcmlops backtest``). Both move the clock with
:func:`~btcmlops.replay.clockwork.run_due_jobs`, so they run exactly the jobs the scheduler
runs, in its order.
"""
