"""Model artifacts on disk: skops files, their sha256, and loading that never runs foreign code.

DESIGN decision 7. An artifact is written with :func:`skops.io.dumps` (no pickle) and read
back only after two checks, both on the same bytes that are then deserialised (so the file
cannot change between the check and the load):

1. its sha256 equals the one the registry recorded when the model was registered;
2. every type in it is either one skops trusts by default (plain containers, numpy arrays,
   scikit-learn estimators) or on :data:`TRUSTED_TYPES`, the explicit list of the types our
   three pipelines contain; skops refuses anything else before constructing it.

After loading, the object must be our pipeline shape (imputer → scaler → the classifier of
the recorded model type) expecting the recorded features. Any failure is an
:class:`~btcmlops.errors.ArtifactIntegrityError` that says which check failed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import skops.io as sio
import skops.io._persist as skops_persist
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skops.io.exceptions import UntrustedTypesFoundException

from btcmlops.errors import ArtifactIntegrityError, InvalidInputError
from btcmlops.modeling.baselines import BaselineRule
from btcmlops.modeling.model_types import (
    CLASSIFIER_STEP,
    IMPUTER_STEP,
    SCALER_STEP,
    classifier_class,
)

ARTIFACT_SUFFIX = ".skops"
_SCHEMA_FILE = "schema.json"  # the archive member skops describes every object in

# Every type a fitted imputer → scaler → {forest, histogram boosting, logistic regression}
# pipeline contains (inventoried with scikit-learn 1.9 and skops 0.16 from the files'
# schemas). The first three are the ones skops does not trust by default; the rest it
# already trusts and are listed so this is the complete inventory. A library upgrade
# that adds a type skops does not trust makes registration fail loudly (see
# serialize_pipeline) until the type is reviewed and added here.
#
# The two tree types are untrusted by default because their node indices are used without
# bounds checks: a crafted file could make predict() read out of bounds. They are trusted
# here only because the sha256 check runs first: the bytes must be the ones this registry
# wrote when it registered the model, so the registry, not the file, is the root of trust.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn.linear_model._logistic.LogisticRegression",
    "numpy.random._generator.Generator",
    # Our own naive rule (modeling.baselines): plain attributes, no indices into arrays.
    "btcmlops.modeling.baselines.BaselineRule",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _CompactJson:
    """``json`` as skops' writer sees it: the same schema, written without indentation.

    skops formats ``schema.json`` with ``indent=2``, which makes Python's json module fall
    back from its C encoder to the pure-Python one. For a 200-tree forest that was most of
    the time a save takes (0.52 s against 0.21 s measured, 3,000 training rows) and half of
    the artifact's bytes (5.0 MB against 2.2 MB). The content, and so loading, is the same.
    """

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(value: Any, **options: Any) -> str:
        options.pop("indent", None)
        return json.dumps(value, **options)


if getattr(skops_persist, "json", None) is json:  # the writer module as this code knows it
    skops_persist.json = _CompactJson  # type: ignore[assignment]


def serialize_pipeline(pipeline: Pipeline, audit: TypeAudit | None = None) -> bytes:
    """The skops bytes of ``pipeline``, refused if the loader would not trust them.

    ``audit`` remembers verdicts across calls (see :class:`TypeAudit`); without it the
    bytes are audited in full.
    """
    data = sio.dumps(pipeline)
    untrusted = sorted(set((audit or TypeAudit()).untrusted_types(data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise InvalidInputError(
            "the pipeline contains types the artifact loader does not trust: "
            f"{', '.join(untrusted)} (review them and add them to TRUSTED_TYPES)"
        )
    return data


class TypeAudit:
    """skops' untrusted-type audit of artifact bytes, run once per inventory of names.

    :func:`skops.io.get_untrusted_types` builds skops' whole node tree (for a 200-tree
    forest about as long as writing it), yet its answer can only depend on what the file's
    ``schema.json`` *names*: loaders, modules, classes, methods, bit generators, all of them
    strings. Numbers (a tree's random state, stored as JSON) and array files name nothing.
    So the set of every string in the schema except those two keys the verdict: models of
    one pipeline shape share it, and only a new inventory is audited by skops in full.
    Loading always runs skops' own check on the bytes read.
    """

    def __init__(self) -> None:
        self._verdicts: dict[frozenset[tuple[str, str]], list[str]] = {}

    def untrusted_types(self, data: bytes) -> list[str]:
        """What ``skops.io.get_untrusted_types(data=data)`` answers, sorted."""
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read(_SCHEMA_FILE))
        inventory = frozenset(_named(schema))
        if inventory not in self._verdicts:
            self._verdicts[inventory] = sorted(sio.get_untrusted_types(data=data))
        return self._verdicts[inventory]


def _named(schema: Any) -> Iterator[tuple[str, str]]:
    """Every (key, string) of a skops schema, except array file names and JSON values that
    are not strings (numbers, booleans, null)."""
    pending = [schema]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
            continue
        if not isinstance(value, dict):
            continue
        json_value = value.get("__loader__") == "JsonNode"
        for key, item in value.items():
            if key == "file" or (json_value and key == "content" and not _is_json_string(item)):
                continue
            if isinstance(item, str):
                yield key, item
            else:
                pending.append(item)


def _is_json_string(content: Any) -> bool:
    """Whether a JSON node's content may name something: the JSON text of a string (JSON
    strings, and only they, open with a quote), or content that is not text at all."""
    return not isinstance(content, str) or content.startswith('"')


def write_artifact(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: readers see no file or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_verified_pipeline(
    path: Path,
    *,
    expected_sha256: str,
    model_type: str,
    feature_names: Sequence[str],
    label: str,
) -> Pipeline:
    """Read, verify and deserialise one artifact (the checks in the module docstring).

    ``label`` names the model in error messages (its registry version).
    """
    data = read_verified_bytes(path, expected_sha256=expected_sha256, label=label)
    return deserialize_pipeline(
        data, model_type=model_type, feature_names=feature_names, label=label
    )


def read_verified_bytes(path: Path, *, expected_sha256: str, label: str) -> bytes:
    """The artifact's bytes, once their sha256 is the one the registry recorded."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactIntegrityError(f"artifact of model {label} is missing: {path}") from None
    except OSError as exc:
        raise ArtifactIntegrityError(
            f"artifact of model {label} cannot be read: {path}: {exc}"
        ) from exc

    actual = sha256_hex(data)
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"artifact of model {label} does not match the registry: sha256 of {path} is "
            f"{actual}, the registry recorded {expected_sha256}; refusing to load it"
        )
    return data


def deserialize_pipeline(
    data: bytes, *, model_type: str, feature_names: Sequence[str], label: str
) -> Pipeline:
    """Verified bytes to our pipeline: trusted types only, then the expected shape."""
    try:
        loaded = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ArtifactIntegrityError(
            f"artifact of model {label} contains types outside the trusted list; refusing to "
            f"load it. {str(exc).splitlines()[0]}"
        ) from None
    except Exception as exc:  # a corrupt archive can fail in many ways inside skops
        raise ArtifactIntegrityError(
            f"artifact of model {label} is unreadable ({type(exc).__name__}: {exc})"
        ) from exc
    _require_pipeline_shape(loaded, model_type=model_type, feature_names=feature_names, label=label)
    return loaded


class VerifiedPipelines:
    """:func:`load_verified_pipeline` that deserialises the same bytes only once.

    Every load still reads the file and checks its sha256 against the registry's, so a
    missing or changed artifact fails exactly as before; only when the bytes are the ones
    already deserialised (same sha256, model type and features) is the pipeline built from
    them then returned again, instead of building an equal one (skops loading a 200-tree
    forest takes most of a second). The pipelines are shared: callers only predict with
    them. The ``capacity`` most recently used are kept.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._loaded: OrderedDict[tuple[str, str, tuple[str, ...]], Pipeline] = OrderedDict()
        self._lock = threading.Lock()

    def load(
        self,
        path: Path,
        *,
        expected_sha256: str,
        model_type: str,
        feature_names: Sequence[str],
        label: str,
    ) -> Pipeline:
        data = read_verified_bytes(path, expected_sha256=expected_sha256, label=label)
        key = (expected_sha256, model_type, tuple(feature_names))
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        pipeline = deserialize_pipeline(
            data, model_type=model_type, feature_names=feature_names, label=label
        )
        self._keep(key, pipeline)
        return pipeline

    def remember(
        self, pipeline: Pipeline, *, sha256: str, model_type: str, feature_names: Sequence[str]
    ) -> None:
        """Keep ``pipeline``, just serialised to the bytes whose digest is ``sha256``.

        The registry calls this after writing a new artifact, so the first load of a model
        it has just registered (a new shadow, a promoted challenger) still reads and checks
        the file but does not deserialise again what it has in memory.
        """
        self._keep((sha256, model_type, tuple(feature_names)), pipeline)

    def _keep(self, key: tuple[str, str, tuple[str, ...]], pipeline: Pipeline) -> None:
        with self._lock:
            self._loaded[key] = pipeline
            self._loaded.move_to_end(key)
            while len(self._loaded) > self.capacity:
                self._loaded.popitem(last=False)


def _require_pipeline_shape(
    loaded: object, *, model_type: str, feature_names: Sequence[str], label: str
) -> None:
    expected_classifier = classifier_class(model_type)
    steps = getattr(loaded, "steps", None)
    shape_ok = (
        isinstance(loaded, Pipeline)
        and [name for name, _ in steps or []] == [IMPUTER_STEP, SCALER_STEP, CLASSIFIER_STEP]
        and type(loaded.named_steps[IMPUTER_STEP]) is SimpleImputer
        and type(loaded.named_steps[SCALER_STEP]) is StandardScaler
        # a declared fallback is the naive rule, registered under the pair's model type
        and type(loaded.named_steps[CLASSIFIER_STEP]) in (expected_classifier, BaselineRule)
    )
    if not shape_ok:
        raise ArtifactIntegrityError(
            f"artifact of model {label} is not an imputer → scaler → "
            f"{expected_classifier.__name__} pipeline; refusing to use it"
        )
    expected_features = list(feature_names)
    actual_features = [str(name) for name in getattr(loaded, "feature_names_in_", [])]
    if actual_features != expected_features:
        raise ArtifactIntegrityError(
            f"artifact of model {label} expects {len(actual_features)} features that differ "
            f"from the {len(expected_features)} recorded in the registry"
        )
