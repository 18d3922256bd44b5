"""The model type names, importable without scikit-learn (the CLI's help and checks use them).

>>> validate_model_type(" Random_Forest ")
'random_forest'
"""

from __future__ import annotations

from btcmlops.errors import InvalidInputError

RANDOM_FOREST = "random_forest"
GRADIENT_BOOSTING = "gradient_boosting"
LOGISTIC_REGRESSION = "logistic_regression"
MODEL_TYPES: tuple[str, ...] = (RANDOM_FOREST, GRADIENT_BOOSTING, LOGISTIC_REGRESSION)
DEFAULT_MODEL_TYPE = RANDOM_FOREST


def validate_model_type(name: str) -> str:
    """The canonical model type, or :class:`InvalidInputError` naming the choices."""
    cleaned = name.strip().lower() if isinstance(name, str) else name
    if cleaned not in MODEL_TYPES:
        raise InvalidInputError(
            f"unknown model type {name!r}: expected one of {', '.join(MODEL_TYPES)}"
        )
    return cleaned
