"""Which job of the MLOps loop runs when: the timetable the scheduler registers on cron
triggers and the replays follow hour by hour.

Each entry is (job name, ``PipelineJobs`` method, APScheduler cron fields), in UTC wall-clock
time: ingest hh:01, sentiment hh:02, features hh:03, predictions hh:04, outcomes hh:05, the
hourly sequential drift detector hh:06 (after outcomes, so a rollback of hh:05 refits it
within the hour), drift check daily 00:10, retraining check daily 00:20, scheduled
retraining Mondays 01:00. An entry whose cron fields are a minute alone runs every hour.
"""

from __future__ import annotations

CronFields = dict[str, int | str]

TIMETABLE: tuple[tuple[str, str, CronFields], ...] = (
    ("ingest", "ingest", {"minute": 1}),
    ("sentiment", "score_sentiment", {"minute": 2}),
    ("features", "build_features", {"minute": 3}),
    ("predictions", "predict", {"minute": 4}),
    ("outcomes", "resolve_outcomes", {"minute": 5}),
    ("sequential_drift", "sequential_drift", {"minute": 6}),
    ("drift_check", "drift_check", {"hour": 0, "minute": 10}),
    ("retraining_check", "retraining_check", {"hour": 0, "minute": 20}),
    ("scheduled_retraining", "scheduled_retraining", {"day_of_week": "mon", "hour": 1}),
)


def is_hourly(cron: CronFields) -> bool:
    """A minute alone: the job runs every hour."""
    return set(cron) == {"minute"}
