"""Honest test-window accuracy on real hourly BTC prices (no news), beside the baselines.

Imports ../shared/data/peer/gemini_BTCUSD_1hr.csv (when present) into a temporary store,
builds the vader feature set (its sentiment columns stay missing: the file has no news that
covers it hour by hour), and trains every model type on the last year and on the full history
with the chronological split and purge gaps used everywhere. Prints a markdown table.

    .venv/bin/python bench/real_data_evaluation.py [--csv PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

from btcmlops.clock import FixedClock
from btcmlops.config import Settings
from btcmlops.db.store import Store
from btcmlops.features.builder import build_features
from btcmlops.ingest.csv_prices import import_price_csv
from btcmlops.modeling.model_types import MODEL_TYPES
from btcmlops.modeling.training import train_from_store

DEFAULT_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "peer" / "gemini_BTCUSD_1hr.csv"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    if not args.csv.exists():
        print(f"{args.csv} is not here; nothing to evaluate")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="btcmlops-real-"))
    url = f"sqlite:///{folder / 'real.db'}"
    store = Store.open(url)
    settings = Settings(home=folder, database_url=url, _env_file=None)
    clock = FixedClock(settings.make_clock().now())
    summary = import_price_csv(store, args.csv, clock=clock, symbol="BTCUSD")
    print(f"imported: {summary.line()}")
    with store.session() as session:
        from sqlalchemy import func, select

        from btcmlops.db.models import PriceBar

        last = session.scalar(select(func.max(PriceBar.ts)))
    as_of = FixedClock(last + timedelta(hours=1))
    started = time.perf_counter()
    built = build_features(store, "vader", clock=as_of, symbol="BTCUSD")
    print(f"features: {built.line()} ({time.perf_counter() - started:.1f} s)")
    print()
    print(
        "| history | model type | test accuracy [95% CI] | ROC AUC | majority class | "
        "last hour | test hours | window |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, days in (("last year", 365), ("full history", None)):
        start = None if days is None else last - timedelta(days=days)
        for model_type in MODEL_TYPES:
            trained = train_from_store(
                store, "vader", model_type, clock=as_of, settings=settings, start=start,
                symbol="BTCUSD", with_importances=False,
            )  # fmt: skip
            test = trained.test
            window = trained.split.windows()[2]
            print(
                f"| {label} | {model_type} | {test.accuracy:.3f} "
                f"[{test.accuracy_ci_low:.3f}-{test.accuracy_ci_high:.3f}] | "
                f"{test.roc_auc:.3f} | {trained.baselines['majority_class'].accuracy:.3f} | "
                f"{trained.baselines['last_hour'].accuracy:.3f} | {test.rows} | "
                f"{window.start:%Y-%m-%d} to {window.end:%Y-%m-%d} |",
                flush=True,
            )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
