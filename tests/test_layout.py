"""The import rules of STYLE.md, kept true by parsing every module's imports, and the cv2 build."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[1] / "server"

PURE = ["frames.py", "landmarks.py", "messages.py", "errors.py", "config.py", "signs"]
FORBIDDEN_IN_PURE = {"asyncio", "aiohttp", "mediapipe"}
FORBIDDEN_IN_TRANSPORT = {"mediapipe", "cv2"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def files(entry: str) -> list[Path]:
    target = SERVER / entry
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


@pytest.mark.parametrize("entry", PURE)
def test_pure_modules_do_not_import_io_or_the_model(entry: str) -> None:
    for path in files(entry):
        bad = imported_modules(path) & FORBIDDEN_IN_PURE
        assert not bad, f"{path.relative_to(SERVER)} imports {bad}"


def test_only_frames_imports_image_libraries_among_pure_modules() -> None:
    for entry in PURE:
        for path in files(entry):
            if path.name != "frames.py":
                assert not imported_modules(path) & {"cv2", "PIL"}, path


@pytest.mark.parametrize("entry", ["transport", "app.py", "__main__.py", "metrics.py"])
def test_transports_never_import_mediapipe_or_cv2(entry: str) -> None:
    for path in files(entry):
        bad = imported_modules(path) & FORBIDDEN_IN_TRANSPORT
        assert not bad, f"{path.relative_to(SERVER)} imports {bad}"


def test_model_package_does_not_import_aiohttp() -> None:
    for path in files("model"):
        assert "aiohttp" not in imported_modules(path), path


def test_mediapipe_is_imported_only_inside_a_function() -> None:
    for path in SERVER.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {a.name for a in node.names} if isinstance(node, ast.Import) else {node.module or ""}
                assert not any(n.split(".")[0] == "mediapipe" for n in names), (
                    f"{path} imports mediapipe at module level"
                )


def test_cv2_is_the_headless_build() -> None:
    """mediapipe pulls opencv-contrib-python, which owns the same cv2/ files: the binary we
    import must be the one opencv-python-headless installed (``make install`` sees to it)."""
    import base64
    import hashlib
    import importlib.metadata

    import cv2

    binary = Path(cv2.__file__).parent / "cv2.abi3.so"
    digest = base64.urlsafe_b64encode(hashlib.sha256(binary.read_bytes()).digest()).rstrip(b"=").decode()
    record = importlib.metadata.distribution("opencv-python-headless").read_text("RECORD") or ""
    expected = next(line.split(",")[1] for line in record.splitlines() if line.startswith("cv2/cv2.abi3.so,"))
    assert expected == f"sha256={digest}", "the imported cv2 binary is not opencv-python-headless's"
    info = cv2.getBuildInformation()
    gui = next(line for line in info.splitlines() if line.strip().startswith("GUI:"))
    assert gui.split(":", 1)[1].strip() == "NONE", gui


@pytest.mark.parametrize("package", ["server", "tests"])
def test_blas_is_single_threaded_before_numpy_loads(package: str) -> None:
    """OpenBLAS reads OPENBLAS_NUM_THREADS once, when numpy loads. ``python -m server`` and the
    workers' ``python -m server.model.worker`` run ``server/__init__`` first, which sets it before
    anything imports numpy; ``tests/__init__`` imports ``server`` so that the tests and the
    benchmarks (``python -m tests.bench...``, whose modules import numpy at their top) run with
    the server's setting rather than measure OpenBLAS helper threads the server never has."""
    import os
    import subprocess
    import sys

    check = (
        "import os, sys\n"
        f"import {package}\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded before the thread setting'\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", check], cwd=SERVER.parent, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "1"
