"""Training, evaluation and the model registry.

* ``model_types`` — the three model types: their names (importable without scikit-learn),
  their imputer → scaler → classifier pipelines, and how many threads they use;
* ``splits`` — chronological train/validation/test splits with purge gaps;
* ``evaluation`` — metrics with intervals, calibration, baselines, permutation importance;
* ``training`` — ``train_model`` (frames in) and ``train_from_store`` (stored rows in);
* ``artifacts`` — skops files, sha256 and the trusted-type list;
* ``registry`` — ``ModelRegistry``: versions, champion pointer, promotion and rollback;
* ``registry_records`` — what the registry returns (``ModelVersionInfo``,
  ``ChampionChangeInfo``), the statuses and ``fallback_words``;
* ``live_models`` — the registry's cached hot reads (champions, shadows, champion history).
"""
