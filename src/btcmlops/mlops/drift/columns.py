"""Input validation for drift checks: rows of features (a DataFrame or an array) to the
feature-major float array every drift statistic works on.

Separate from ``reference`` and ``feature_drift`` because both read their windows through it:
the one place that says which columns are missing or not numeric, and what shape was expected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from btcmlops.errors import InvalidInputError


def feature_columns(
    data: pd.DataFrame | np.ndarray, feature_names: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    """Feature names and a feature-major float array (features x rows) from rows of data."""
    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns] if feature_names is None else list(feature_names)
        missing = [name for name in names if name not in data.columns]
        if missing:
            raise InvalidInputError(f"missing feature column(s): {', '.join(missing)}")
        frame = data[names]
        # one dtype per column from ``dtypes``: ``frame[name]`` would build a Series each
        non_numeric = [
            name
            for name, dtype in zip(names, frame.dtypes, strict=True)
            if not pd.api.types.is_numeric_dtype(dtype)
        ]
        if non_numeric:
            raise InvalidInputError(f"feature column(s) not numeric: {', '.join(non_numeric)}")
        matrix = frame.to_numpy(dtype=float, na_value=np.nan)
        return names, np.ascontiguousarray(matrix.T)
    matrix = np.asarray(data, dtype=float)
    if matrix.ndim != 2:
        raise InvalidInputError(
            f"expected a 2-D array of rows x features, got {matrix.ndim} dimension(s)"
        )
    if feature_names is None:
        names = [f"feature_{j}" for j in range(matrix.shape[1])]
    else:
        names = [str(name) for name in feature_names]
    if len(names) != matrix.shape[1]:
        raise InvalidInputError(
            f"{len(names)} feature names for an array with {matrix.shape[1]} columns"
        )
    return names, np.ascontiguousarray(matrix.T)
