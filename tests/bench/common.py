"""What every benchmark shares: the machine's description, percentiles, fixture frames, results.

Benchmarks are scripts (``python -m tests.bench.NAME``), never pytest tests: a timing is a
measurement to report, not an assertion.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"
FIXTURES = (REPO / ".." / "shared" / "fixtures").resolve()


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    cpu = platform.processor() or ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), cpu)
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        total_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # Other work on the box skews every number: say how busy it was when measured.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def video_jpegs(name: str = "open_hand_640x360.mp4", quality: int = 70, limit: int | None = None) -> list[bytes]:
    """A fixture video's frames as the web page sends them: JPEG at 70% quality."""
    capture = cv2.VideoCapture(str(FIXTURES / "videos" / name))
    frames: list[bytes] = []
    try:
        while limit is None or len(frames) < limit:
            ok, bgr = capture.read()
            if not ok:
                break
            ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
            frames.append(jpeg.tobytes())
    finally:
        capture.release()
    return frames


def write_results(name: str, data: dict[str, Any], markdown: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    path = RESULTS / f"{name}.md"
    path.write_text(markdown)
    return path
