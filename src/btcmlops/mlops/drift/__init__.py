"""Drift detection: statistics that mean something, computed for all features at once.

- ``statistics``: two-sample KS (matching scipy), PSI, Benjamini–Hochberg, the PSI noise
  level and effective sample sizes, on feature-major arrays.
- ``feature_drift``: ``compare_features`` (reference vs current window: per-feature results,
  the drift rule, the ranking); ``reference``: ``DriftReference`` (reusable,
  JSON-serialisable) and ``Dependence``; ``severity_rules``: the severity of a check;
  ``columns``: the input validation both windows go through.
- ``compare`` / ``files`` / ``tables`` / ``html_report``: ``btcmlops drift compare`` on CSV
  or Parquet files, and ``POST /drift/compare`` on tables sent in the request.
- ``monitor``: ``DriftDetector``, the checks of the store's data (windows off the clock, the
  feature check, the summary), recorded in ``drift_reports``, with their history and the
  latest stored check.
- ``model_drift``: the champion's accuracy and calibration, reference vs current window.
- ``recommendations``: the summary's advice in words.
- ``results``: the typed documents the checks answer with and store (``FeatureDriftReport``,
  ``ModelDriftReport``, ``DriftSummaryReport``, ...).
- ``sequential`` / ``upcrossings``: ``SequentialDetector``, an hourly detector updated row by
  row with a threshold set for a stated mean time between false alarms (benchmarked in
  ``bench/detectors.py``).
- ``sequential_monitor`` / ``sequential_status``: ``SequentialMonitor`` runs one per feature
  set on the store's feature rows (the scheduler's hourly job): fitted, fed, refitted after a
  retraining or a rollback, its fits and hourly points stored; the status it reports is what
  the retraining policy and ``GET /drift/sequential`` read.

The formulas and rules are in docs/drift.md.
"""
