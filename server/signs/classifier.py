"""The two classifiers: built-in letters (a small MLP) and taught signs (nearest example).

Owns the arithmetic from a feature vector (``features.py``) to a label, a confidence and a
distance that says how typical the shape is, and the weights file of the built-in letters.
It does not own thresholds from the configuration, sessions or storage (``recognizer.py``
decides what counts as "no sign"). Pure numpy; the weights load with ``numpy.load`` and no
pickle.

Built-in letters: features are standardised, then one hidden ReLU layer and a softmax. Next
to the weights the file holds prototypes: every tenth training frame of every letter, as raw
features. The *distance* of a hand is the Euclidean distance (feature units) to the nearest
prototype of any letter. The MLP always picks something; the distance is what lets the
recognizer say "this is no letter" (a random or scrambled hand lies far from every prototype
even when the softmax is sure). ``unknown_distance`` is the threshold ``train.py`` calibrated
on held-out frames.

Taught signs: the distance is the Euclidean distance, in feature units, to the nearest taught
example; confidence compares it with the nearest example of any *other* taught label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from server.signs.features import FEATURE_SIZE, FloatArray

IntArray = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]

#: The weights file shipped beside this module, written by ``python -m server.signs.train``.
DEFAULT_WEIGHTS_PATH = Path(__file__).resolve().parent / "builtin_letters.npz"
#: Format version inside the weights file; bump when the arrays change meaning.
WEIGHTS_VERSION = 1


@dataclass(frozen=True, slots=True)
class LetterModel:
    """The built-in letters' weights; immutable once loaded.

    Attributes:
        labels: K letter names, in the order of the output units.
        examples: K training rows behind each letter (``GET /api/signs`` shows them).
        mean, std: (D,) standardisation of the features.
        w1, b1, w2, b2: the MLP, (D, H), (H,), (H, K), (K,).
        prototypes: (P, D) raw features of typical training hands (all letters).
        unknown_distance: distance above which a hand is no letter (calibrated on held-out frames).
    """

    labels: tuple[str, ...]
    examples: tuple[int, ...]
    mean: FloatArray
    std: FloatArray
    w1: FloatArray
    b1: FloatArray
    w2: FloatArray
    b2: FloatArray
    prototypes: FloatArray
    unknown_distance: float
    # Derived once, for the per-frame distance: the prototypes transposed (contiguous) and
    # their squared norms.
    _prototypes_t: FloatArray = field(init=False, repr=False, compare=False)
    _prototypes_sq: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prototypes_t", np.ascontiguousarray(self.prototypes.T))
        object.__setattr__(self, "_prototypes_sq", (self.prototypes**2).sum(axis=1))

    def predict(self, features: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
        """Classify a batch.

        Args:
            features: (N, D) feature vectors.

        Returns:
            (best label index, its probability, distance to the nearest prototype), each (N,).
        """
        z = (features - self.mean) / self.std
        probs = self.probabilities_standardised(z)
        best = probs.argmax(axis=1)
        rows = np.arange(len(z))
        # min over prototypes of |f|^2 - 2 f.p + |p|^2; |f|^2 is the same for every p.
        nearest = (self._prototypes_sq - 2.0 * (features @ self._prototypes_t)).min(axis=1)
        dist = np.sqrt(np.maximum(nearest + (features**2).sum(axis=1), 0.0))
        return best.astype(np.int64), probs[rows, best], dist

    def probabilities_standardised(self, z: FloatArray) -> FloatArray:
        """Softmax probabilities (N, K) for already standardised features."""
        hidden = np.maximum(z @ self.w1 + self.b1, 0.0)
        logits = hidden @ self.w2 + self.b2
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probs: FloatArray = exp / exp.sum(axis=1, keepdims=True)
        return probs


def save_letter_model(model: LetterModel, path: Path) -> None:
    """Write the weights as float32 ``.npz`` (compressed, no pickle)."""
    np.savez_compressed(
        path,
        version=np.array(WEIGHTS_VERSION),
        labels=np.array(model.labels),
        examples=np.array(model.examples, dtype=np.int64),
        mean=model.mean.astype(np.float32),
        std=model.std.astype(np.float32),
        w1=model.w1.astype(np.float32),
        b1=model.b1.astype(np.float32),
        w2=model.w2.astype(np.float32),
        b2=model.b2.astype(np.float32),
        prototypes=model.prototypes.astype(np.float32),
        unknown_distance=np.array(model.unknown_distance),
    )


def load_letter_model(path: Path) -> LetterModel:
    """Read weights written by :func:`save_letter_model`.

    Raises:
        ValueError: not such a file, another version, or arrays of the wrong shapes.
        OSError: the file cannot be read.
    """
    with np.load(path, allow_pickle=False) as data:
        try:
            version = int(data["version"])
            if version != WEIGHTS_VERSION:
                raise ValueError(f"{path}: weights version {version}, expected {WEIGHTS_VERSION}")
            arrays = {k: np.asarray(data[k], dtype=np.float64) for k in _ARRAYS}
            labels = tuple(str(s) for s in data["labels"])
            examples = tuple(int(n) for n in data["examples"])
            unknown = float(data["unknown_distance"])
        except KeyError as exc:
            raise ValueError(f"{path}: not a letter weights file (missing {exc})") from None
    k, d = len(labels), FEATURE_SIZE
    hidden = arrays["b1"].shape[0] if arrays["b1"].ndim == 1 else -1
    expected = {
        "mean": (d,),
        "std": (d,),
        "w1": (d, hidden),
        "b1": (hidden,),
        "w2": (hidden, k),
        "b2": (k,),
        "prototypes": (arrays["prototypes"].shape[0], d),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape}")
    if len(examples) != k:
        raise ValueError(f"{path}: {len(examples)} example counts for {k} labels")
    return LetterModel(labels=labels, examples=examples, unknown_distance=unknown, **arrays)


_ARRAYS = ("mean", "std", "w1", "b1", "w2", "b2", "prototypes")


@dataclass(frozen=True, slots=True)
class TaughtModel:
    """Every taught example as features; immutable (a teach builds a new one).

    Attributes:
        labels: the taught labels, sorted.
        features: (M, D) one row per example, float32 (half the memory; distances need no more).
        owners: (M,) index into ``labels`` of each row.
    """

    labels: tuple[str, ...]
    features: Float32Array
    owners: IntArray
    _features_t: Float32Array = field(init=False, repr=False, compare=False)
    _features_sq: Float32Array = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_features_t", np.ascontiguousarray(self.features.T))
        object.__setattr__(self, "_features_sq", (self.features**2).sum(axis=1))

    @staticmethod
    def empty() -> TaughtModel:
        return TaughtModel(
            labels=(), features=np.zeros((0, FEATURE_SIZE), dtype=np.float32), owners=np.zeros(0, dtype=np.int64)
        )

    def nearest(self, features: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
        """For each feature row: the nearest example's label index, its distance, and the distance
        to the nearest example of any other label (``inf`` when only one label is taught).

        Raises:
            ValueError: no example is taught (check :attr:`labels` first).
        """
        if not self.labels:
            raise ValueError("no taught sign to match against")
        # The query is cast down, not the (big) table up: no copy of the table per frame.
        query = features.astype(np.float32)
        sq = self._features_sq - 2.0 * (query @ self._features_t) + (query**2).sum(axis=1)[:, None]
        dist = np.sqrt(np.maximum(sq, 0.0)).astype(np.float64)
        best_row = dist.argmin(axis=1)
        best_label = self.owners[best_row]
        rows = np.arange(len(features))
        best = dist[rows, best_row]
        other = np.where(self.owners[None, :] == best_label[:, None], np.inf, dist).min(axis=1)
        return best_label, best, other
