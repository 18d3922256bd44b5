"""Predictions after the model has answered: logged, read back, scored against what happened.

What is where:

- ``serving``: the one path from a predictor's answer to a logged prediction and the
  ``/predict`` response (``predict_and_log``, ``log_shadow_predictions``).
- ``writer``: ``PredictionLogger``, the bounded queue and writer thread that store records in
  batches off the request path, spooling them while the store is down; ``LoggerHealth``.
- ``spool``: the append-only file of records that could not reach the store, and its replay.
- ``ids``: prediction ids a process assigns without asking the store.
- ``records``: a stored prediction in the API's field names, and the feature snapshot's hash.
- ``queries``: ``PredictionQueries``, the read side (one prediction, the newest, accuracy,
  totals), in SQL.
- ``timeline``: one prediction per hour with rolling realised and estimated accuracy.
- ``outcomes``: what actually happened, from the price bars (the hourly job) or by hand.
- ``results``: the typed documents all of them answer with (``PredictionRecord``,
  ``PredictAnswer``, ``AccuracyStats``, ...).
"""
