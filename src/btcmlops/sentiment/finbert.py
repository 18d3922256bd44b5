"""FinBERT: a BERT classifier fine-tuned on financial news (Araci 2019, ``ProsusAI/finbert``).

Weights are never downloaded at run time: they are read from a local folder
(``BTCMLOPS_FINBERT_MODEL=/path/to/folder``) or from the Hugging Face cache, always with
``local_files_only=True``. torch and transformers (the ``finbert`` extra) are imported only
when a :class:`FinbertScorer` is built, so the base install, without torch, never touches
them. When anything is missing, :class:`ScorerUnavailableError` names the model and says how
to provide it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btcmlops.errors import InvalidInputError
from btcmlops.sentiment.base import ScorerUnavailableError, SentimentScore

DEFAULT_MODEL = "ProsusAI/finbert"
MAX_TOKENS = 512  # BERT's position embeddings; longer texts are truncated to their start
FINBERT_LABELS = ("positive", "negative", "neutral")

# ``org/name`` or a bare ``name``; anything else (``./x``, ``/x``, ``~/x``, ``a/b/c``) is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Files that decide what a folder's model computes (weights, config, tokenizer).
_FINGERPRINT_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def how_to_provide(model: str) -> str:
    """The instructions every "FinBERT unavailable" message ends with."""
    hub_id = model if _HUB_ID.match(model) else DEFAULT_MODEL
    return (
        "To use FinBERT, install the extra (pip install 'btcmlops[finbert]', or "
        "make install-finbert) and set BTCMLOPS_FINBERT_MODEL to a local folder holding the "
        "weights (config.json, tokenizer files and model.safetensors or pytorch_model.bin), "
        f"or pre-download {hub_id} into the Hugging Face cache on a machine with internet "
        f"(hf download {hub_id}) and copy that cache here. btcmlops never downloads weights "
        "at run time. VADER works without any of this."
    )


def unavailable(model: str, reason: str) -> ScorerUnavailableError:
    return ScorerUnavailableError(
        f"FinBERT model {model!r} cannot be loaded: {reason}. {how_to_provide(model)}"
    )


@dataclass(frozen=True, slots=True)
class FinbertWeights:
    """Where a FinBERT model's files are, and what tells these weights apart from others.

    ``source`` is what ``from_pretrained`` receives (a folder, or a cached hub id), ``folder``
    the folder holding ``config.json``, ``commit`` the hub commit when known.
    """

    requested: str
    source: str
    folder: Path
    label: str
    commit: str | None


def locate_finbert_weights(model: str | Path) -> FinbertWeights:
    """Find ``model`` on this machine without loading it (and without any network access).

    ``model`` is a folder, or a Hugging Face id already in the local cache.

    Raises
    ------
    ScorerUnavailableError
        The folder does not exist or holds no ``config.json``, or the id is not cached.
    """
    requested = str(model)
    folder = Path(requested).expanduser()
    if folder.exists():
        if not (folder / "config.json").is_file():
            raise unavailable(requested, f"the folder {folder} holds no config.json")
        folder = folder.resolve()
        label, commit = _snapshot_identity(folder)
        return FinbertWeights(
            requested=requested, source=str(folder), folder=folder, label=label, commit=commit
        )
    if not _HUB_ID.match(requested):
        raise unavailable(requested, f"there is no folder {folder.absolute()}")
    config = _cached_hub_file(requested, "config.json")
    if config is None:
        raise unavailable(
            requested,
            f"it is not a folder and not in the local Hugging Face cache ({_hub_cache_dir()})",
        )
    snapshot = config.parent
    return FinbertWeights(
        requested=requested,
        source=requested,
        folder=snapshot,
        label=requested,
        commit=snapshot.name,
    )


def finbert_unavailable_reason(model: str | Path) -> str | None:
    """Why FinBERT cannot be built here (cheap: loads nothing), or ``None`` if it should load."""
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        return str(_libraries_missing(str(model), " and ".join(missing)))
    try:
        locate_finbert_weights(model)
    except ScorerUnavailableError as exc:
        return str(exc)
    return None


class FinbertScorer:
    """FinBERT probabilities as :class:`SentimentScore`.

    * ``positive``, ``negative``, ``neutral``: the softmax probabilities of the model's
      three classes, found by name in ``config.id2label`` (case-insensitive), never by
      position: checkpoints order their labels differently.
    * ``compound``: P(positive) − P(negative), in [-1, 1].
    * ``confidence``: the largest of the three probabilities.

    Texts longer than 512 tokens are truncated (FinBERT sees their start: the title and
    lead, where news puts the point). Inference runs on the CPU in batches of
    ``batch_size`` under ``torch.inference_mode()``; texts are batched in order of length so
    batches carry little padding, and results come back in input order.

    Parameters
    ----------
    model
        A folder with the weights, or a Hugging Face id already in the local cache.
    batch_size
        Texts per forward pass (memory grows with batch_size × 512 tokens).
    threads
        torch's intra-op thread count. It is process-wide, so it is set here, once, on
        purpose: BERT inference on a CPU scales with threads up to the physical cores and
        slows down beyond them (threads fighting over cores), and the cores are shared with
        the API and training. Pass ``settings.n_jobs``, the compute budget of one job
        (:func:`btcmlops.sentiment.scorers.make_scorer` does).
    """

    name = "finbert"

    def __init__(
        self, model: str | Path = DEFAULT_MODEL, *, batch_size: int = 16, threads: int = 1
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(f"FinBERT batch_size must be at least 1, got {batch_size}")
        if threads < 1:
            raise InvalidInputError(f"FinBERT threads must be at least 1, got {threads}")
        self.batch_size = batch_size
        torch, transformers = _import_libraries(str(model))
        self.weights = locate_finbert_weights(model)
        self._torch = torch
        torch.set_num_threads(min(threads, os.cpu_count() or 1))
        self._tokenizer, self._model = _load(transformers, self.weights)
        config = self._model.config
        self._label_columns = label_columns(config.id2label, model=self.weights.requested)
        self.max_tokens = min(MAX_TOKENS, int(getattr(config, "max_position_embeddings", 512)))
        self.version = _version(self.weights)

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        torch = self._torch
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[SentimentScore | None] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                positions = order[start : start + self.batch_size]
                encoded = self._tokenizer(
                    [texts[i] for i in positions],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                logits = self._model(**encoded).logits
                # float64 so the three shares sum to 1 to within 1e-12
                probabilities = torch.softmax(logits.double(), dim=-1)
                chosen = probabilities[:, self._label_columns].tolist()
                for position, (positive, negative, neutral) in zip(positions, chosen, strict=True):
                    results[position] = SentimentScore(
                        positive=positive,
                        negative=negative,
                        neutral=neutral,
                        compound=positive - negative,
                        confidence=max(positive, negative, neutral),
                    )
        return [score for score in results if score is not None]

    def __repr__(self) -> str:
        return f"FinbertScorer(version={self.version!r}, batch_size={self.batch_size})"


def label_columns(id2label: Mapping[Any, str], *, model: str) -> list[int]:
    """The class indices of positive, negative and neutral, read from ``id2label`` by name.

    >>> label_columns({0: "Neutral", 1: "POSITIVE", 2: "negative"}, model="m")
    [1, 2, 0]
    """
    by_name = {str(label).strip().lower(): int(index) for index, label in id2label.items()}
    if set(by_name) != set(FINBERT_LABELS):
        found = ", ".join(repr(label) for label in id2label.values())
        raise unavailable(
            model,
            f"its labels are {found}; a FinBERT model must have exactly the three labels "
            "positive, negative and neutral (config.json id2label)",
        )
    return [by_name[label] for label in FINBERT_LABELS]


def _import_libraries(model: str) -> tuple[Any, Any]:
    try:
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
    except ImportError as exc:
        raise _libraries_missing(model, exc.name or str(exc)) from exc
    return torch, transformers


def _libraries_missing(model: str, what: str) -> ScorerUnavailableError:
    return unavailable(model, f"{what} is not installed (FinBERT needs torch and transformers)")


def _load(transformers: Any, weights: FinbertWeights) -> tuple[Any, Any]:
    # The CLI draws its own progress bar; transformers' would interleave with it.
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            weights.source, local_files_only=True
        )
        model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
            weights.source, local_files_only=True, output_loading_info=True
        )
    # transformers, tokenizers and safetensors raise many types for unreadable weights
    # (OSError, ValueError, SafetensorError, ...); each means "cannot load", said one way.
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise unavailable(weights.requested, f"loading failed ({reason})") from exc
    # A plain BERT checkpoint "loads" as a classifier with a random head and only a warning;
    # its scores would be noise, so refuse it.
    missing = list(info.get("missing_keys") or []) + list(info.get("mismatched_keys") or [])
    if missing:
        shown = ", ".join(str(key) for key in missing[:5])
        raise unavailable(
            weights.requested,
            f"the checkpoint lacks weights the classifier needs ({shown}); "
            "it is not a fine-tuned sentiment classifier",
        )
    model.eval()  # no dropout: the same text always gets the same score
    return tokenizer, model


def _version(weights: FinbertWeights) -> str:
    """``<model>@<commit>`` for hub snapshots, else ``<folder name>@sha256:<content hash>``."""
    label = weights.label if len(weights.label) <= 64 else "…" + weights.label[-63:]
    if weights.commit:
        return f"{label}@{weights.commit[:40]}"
    return f"{label}@sha256:{_folder_fingerprint(weights.folder)[:16]}"


def _folder_fingerprint(folder: Path) -> str:
    """sha256 over the config, tokenizer and weight files, so any change of weights shows.

    Reads the weights once (about a second for FinBERT's 440 MB), next to the seconds that
    loading them takes anyway.
    """
    files = [folder / name for name in _FINGERPRINT_FILES if (folder / name).is_file()]
    for pattern in _WEIGHT_PATTERNS:
        files.extend(sorted(folder.glob(pattern)))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _snapshot_identity(folder: Path) -> tuple[str, str | None]:
    """A folder inside the Hugging Face cache is ``models--org--name/snapshots/<commit>``."""
    repo = folder.parent.parent.name
    if folder.parent.name == "snapshots" and repo.startswith("models--"):
        return repo.removeprefix("models--").replace("--", "/"), folder.name
    return folder.name, None


def _cached_hub_file(model: str, filename: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(model, filename)
    except ValueError:  # not a valid repository id (HFValidationError)
        return None
    return Path(found) if isinstance(found, str) else None


def _hub_cache_dir() -> str:
    try:
        from huggingface_hub import constants
    except ImportError:
        return "HF_HOME/hub"
    return str(constants.HF_HUB_CACHE)
