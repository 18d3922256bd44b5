"""Drift detection: statistics that mean something, computed for all features at once.

- ``statistics``: two-sample KS (matching scipy), PSI, Benjamini–Hochberg, the PSI noise
  level and effective sample sizes, on feature-major arrays.
- ``feature_drift``: ``compare_features`` (reference vs current window: per-feature results,
  the drift rule, the severity) and ``DriftReference`` (reusable, JSON-serialisable).
- ``compare`` / ``files`` / ``html_report``: the ``btcmlops drift compare`` tool on CSV or
  Parquet files.

The formulas and rules are in docs/drift.md.
"""
