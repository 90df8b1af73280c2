"""Find the hand model files in the installed mediapipe wheel without importing mediapipe.

The one locator for every engine: the MediaPipe graph loads these files itself, the LiteRT
engine reads them by path, and ``/readyz`` reports them with their sha256. Importing mediapipe
would load its native graph runtime (tens of MB, and the server process must never do it), so
the package is located with ``importlib.util.find_spec`` (which for a top-level package does not
run its ``__init__``) and, failing that, with the distribution's file list from
``importlib.metadata``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Complexity = Literal["lite", "full"]


@dataclass(frozen=True, slots=True)
class HandModelFiles:
    """The three files the hand graph reads at one complexity (model_complexity 0 = lite, 1 = full)."""

    palm_detection: Path
    hand_landmark: Path
    handedness_labels: Path

    def models(self) -> list[Path]:
        return [self.palm_detection, self.hand_landmark]


def mediapipe_package_dir() -> Path:
    """The installed ``mediapipe`` package folder.

    Raises:
        FileNotFoundError: mediapipe is not installed.
    """
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    try:
        files = importlib.metadata.files("mediapipe") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.parts[:1] == ("mediapipe",) and file.name == "__init__.py" and len(file.parts) == 2:
            return Path(str(file.locate())).parent
    raise FileNotFoundError("the mediapipe package is not installed; its wheel holds the hand models")


def as_complexity(name: str) -> Complexity:
    """A validated config value ("lite" or "full") as the type the engines take.

    Raises:
        ValueError: any other name.
    """
    if name == "lite":
        return "lite"
    if name == "full":
        return "full"
    raise ValueError(f"complexity must be 'lite' or 'full', got {name!r}")


def hand_model_files(complexity: Complexity, root: Path | None = None) -> HandModelFiles:
    """Paths of the models the hand graph loads at ``complexity``.

    The paths are those of the ConstantSidePacketCalculator nodes under
    ``palmdetectioncpu__palmdetectionmodelloader`` and ``handlandmarkcpu__handlandmarkmodelloader``
    in ``hand_landmark_tracking_cpu.binarypb``, and the label map of
    ``handlandmarkcpu__TensorsToClassificationCalculator``.

    Raises:
        ValueError: ``complexity`` is neither "lite" nor "full".
        FileNotFoundError: mediapipe, or one of the files, is missing.
    """
    if complexity not in ("lite", "full"):
        raise ValueError(f"complexity must be 'lite' or 'full', got {complexity!r}")
    base = root if root is not None else mediapipe_package_dir()
    files = HandModelFiles(
        palm_detection=base / "modules" / "palm_detection" / f"palm_detection_{complexity}.tflite",
        hand_landmark=base / "modules" / "hand_landmark" / f"hand_landmark_{complexity}.tflite",
        handedness_labels=base / "modules" / "hand_landmark" / "handedness.txt",
    )
    for path in (files.palm_detection, files.hand_landmark, files.handedness_labels):
        if not path.is_file():
            raise FileNotFoundError(f"hand model file missing from the mediapipe wheel: {path}")
    return files


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ModelFile:
    path: str
    sha256: str
    bytes: int


def describe(paths: list[Path]) -> list[ModelFile]:
    """Path, sha256 and size of each file (reads them whole; run it off the event loop)."""
    return [ModelFile(path=str(p), sha256=sha256_file(p), bytes=p.stat().st_size) for p in paths]
