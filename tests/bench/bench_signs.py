"""Sign classification time per frame: ``python -m tests.bench.bench_signs``.

Measures, in this process, the time of ``Recognizer.classify`` (one hand, stateless) and of
``SignSession.observe`` (classify + smoothing) on real fixture hands, for three sets of taught
signs: none, the three Kazuhito00 gestures with 10 examples each, and the configured maximum
(``max_labels`` x ``max_examples_per_label``). Also the import + load cost and the memory the
taught model holds. Writes ``results/bench_signs.json`` and prints it. A benchmark, not a test:
nothing here asserts a time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results" / "bench_signs.json"
FRAMES = 3000


def _timings_us(fn: object, inputs: list[object]) -> dict[str, float]:
    assert callable(fn)
    for item in inputs[:200]:  # warm-up
        fn(item)
    samples = []
    cpu = []
    for item in inputs:
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        fn(item)
        cpu.append((time.thread_time_ns() - start_cpu) / 1e3)
        samples.append((time.perf_counter_ns() - start) / 1e3)
    samples.sort()
    cpu.sort()
    # Wall time suffers from whatever else the machine runs; thread CPU time is what one frame
    # costs this thread, the number that adds up when many clients share a core.
    return {
        "frames": len(samples),
        "wall_median_us": round(statistics.median(samples), 1),
        "wall_p95_us": round(samples[int(0.95 * len(samples))], 1),
        "wall_p99_us": round(samples[int(0.99 * len(samples))], 1),
        "wall_max_us": round(samples[-1], 1),
        "cpu_median_us": round(statistics.median(cpu), 1),
        "cpu_p99_us": round(cpu[int(0.99 * len(cpu))], 1),
    }


def main() -> int:
    started = time.perf_counter()
    from server.landmarks import Hand, Handedness
    from server.signs import SignsConfig, open_recognizer
    from server.signs.train import ASL_CSV, DEFAULT_FIXTURES, load_gestures, load_letters

    import_ms = (time.perf_counter() - started) * 1e3

    letters = load_letters(DEFAULT_FIXTURES / ASL_CSV)
    rng = np.random.default_rng(0)
    rows = letters.points[rng.integers(0, len(letters.points), FRAMES)]
    hands = [[Hand(Handedness.RIGHT, 0.9, tuple(map(tuple, p)))] for p in rows]
    names, idx, keypoints = load_gestures(DEFAULT_FIXTURES)

    def gesture_hand(row: np.ndarray) -> list[Hand]:
        pts = np.zeros((21, 3))
        pts[:, :2] = row.reshape(21, 2) * 0.2 + 0.5
        return [Hand(Handedness.RIGHT, 1.0, tuple(map(tuple, pts)))]

    base = SignsConfig(db_path=":memory:")
    report: dict[str, object] = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "import_signs_ms": round(import_ms, 1),
        "limits": {"max_labels": base.max_labels, "max_examples_per_label": base.max_examples_per_label},
        "cases": {},
    }
    cases = report["cases"]
    assert isinstance(cases, dict)
    for case in ("builtin_only", "three_gestures_x10", "taught_at_limit"):
        t0 = time.perf_counter()
        rec = open_recognizer(base)
        open_ms = (time.perf_counter() - t0) * 1e3
        tracemalloc.start()
        teach_ms = 0.0
        if case == "three_gestures_x10":
            for g, name in enumerate(names):
                sel = keypoints[idx == g][::100][:10]
                t0 = time.perf_counter()
                rec.teach(name, [gesture_hand(r) for r in sel])
                teach_ms = max(teach_ms, (time.perf_counter() - t0) * 1e3)
        elif case == "taught_at_limit":
            for i in range(base.max_labels):
                sel = keypoints[rng.integers(0, len(keypoints), base.max_examples_per_label)]
                chunk = base.max_examples_per_request
                for start in range(0, len(sel), chunk):
                    t0 = time.perf_counter()
                    rec.teach(f"sign{i}", [gesture_hand(r) for r in sel[start : start + chunk]])
                    teach_ms = max(teach_ms, (time.perf_counter() - t0) * 1e3)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        session = rec.new_session()
        cases[case] = {
            "open_ms": round(open_ms, 1),
            "slowest_teach_request_ms": round(teach_ms, 1),
            "taught_peak_traced_mb": round(peak / 2**20, 2),
            "classify": _timings_us(rec.classify, hands),  # type: ignore[arg-type]
            "observe": _timings_us(session.observe, hands),  # type: ignore[arg-type]
        }
        rec.close()
    report["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
