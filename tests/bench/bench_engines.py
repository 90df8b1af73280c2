"""Hand engines head to head: MediaPipe's graph vs the LiteRT engine, without the server.

``python -m tests.bench.bench_engines`` writes ``results/bench_engines.json`` and
``results/bench_engines.md``. For each engine (``server.model.hands.MediaPipeEngine``,
``server.model.litert.LiteRTEngine``) and model complexity (lite, full), a fresh Python process
imports only what that engine needs (as a model worker would), then measures:

- RSS after the imports, after building the engine, after the benchmark frames in one session
  at a time, and after the same engine has served 8 tracking sessions interleaved (MediaPipe
  needs a graph per tracking session; LiteRT a few rects);
- per-frame latency of ``engine.process`` (model and pre/post-processing, no decoding) in image
  mode (no session) and in tracking mode (each video streamed as one session), p50/p95/mean.
  LiteRT's tracking mode is measured with ``detect_interval_frames`` 1 (the graph's own rule)
  and 5; its frames answered from tracking alone (landmark model only) are also reported apart.

It also records the parity figures behind ``tests/test_litert_parity.py`` (which asserts
thresholds but reports no numbers): per fixture set and per video, how far LiteRT lands from the
graph. ``--only speed`` or ``--only parity`` re-measures one half and keeps the other from the last
``results/bench_engines.json``.

Frames: both fixture videos, fitted within 640x480 as the server fits them, stored as JPEG
(quality 90) in a temporary folder and decoded by each child, so no child holds more than one
frame. Benchmarks are measurements, not tests; the machine and its load average are recorded
with the numbers, since other work on a shared box moves latencies.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENGINES = ("mediapipe", "litert")
COMPLEXITIES = ("lite", "full")
WARMUP_FRAMES = 5
SESSIONS = 8
SESSION_FRAMES = 160


# -- child: one engine in a fresh process ---------------------------------------------------------


def _rss_mb() -> float:
    import psutil

    rss: int = psutil.Process().memory_info().rss
    return round(rss / 2**20, 1)


def _stats(values: list[float]) -> dict[str, float | int | None]:
    import numpy as np

    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "mean_ms": None}
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "mean_ms": round(float(np.mean(values)), 2),
    }


def tracking_summary(all_ms: list[float], cpu_ms: list[float], only_ms: list[float], hands: int) -> dict[str, Any]:
    """Latency of a tracked stream, its CPU time, the frames answered from tracking alone, hands found."""
    return {**_stats(all_ms), "cpu": _stats(cpu_ms), "hands": hands, "landmark_only": _stats(only_ms)}


def child(engine_name: str, complexity: str, frame_dir: Path) -> dict[str, Any]:
    """Measure one engine; import nothing the worker would not."""
    import cv2
    import numpy as np

    out: dict[str, Any] = {"engine": engine_name, "complexity": complexity}
    engine: Any
    if engine_name == "mediapipe":
        from server.model.hands import MediaPipeEngine

        out["rss_mb_imported"] = _rss_mb()
        t0 = time.perf_counter()
        engine = MediaPipeEngine(complexity, 2, 0.5, 0.5, tracking_sessions=SESSIONS)
        engine.load()
    else:
        from server.model.litert import LiteRTEngine

        out["rss_mb_imported"] = _rss_mb()
        t0 = time.perf_counter()
        engine = LiteRTEngine(complexity, max_hands=2, detect_interval_frames=1, max_sessions=64)  # type: ignore[arg-type]
    out["load_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["rss_mb_loaded"] = _rss_mb()
    out["mediapipe_imported"] = any(m.split(".")[0] == "mediapipe" for m in sys.modules)

    videos = sorted({p.name.split("_")[0] for p in frame_dir.glob("*.jpg")})

    def frames(video: str) -> Any:
        for path in sorted(frame_dir.glob(f"{video}_*.jpg")):
            bgr = cv2.imread(str(path))
            yield np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    first = next(frames(videos[0]))
    for _ in range(WARMUP_FRAMES):
        engine.process(first, None)

    def timed(session_of: Any) -> tuple[list[float], list[float], list[float], int]:
        all_ms: list[float] = []
        cpu_ms: list[float] = []
        tracked_ms: list[float] = []
        hands = 0
        for vi, video in enumerate(videos):
            session = session_of(vi)
            for rgb in frames(video):
                t = time.perf_counter()
                c = time.process_time()
                found, tracked = engine.process(rgb, session)
                ms = (time.perf_counter() - t) * 1000
                cpu_ms.append((time.process_time() - c) * 1000)
                all_ms.append(ms)
                hands += len(found)
                if tracked and engine_name == "litert":
                    tracked_ms.append(ms)
            if session is not None:
                engine.end_session(session)
        return all_ms, cpu_ms, tracked_ms, hands

    image_ms, image_cpu, _, image_hands = timed(lambda vi: None)
    out["image"] = {**_stats(image_ms), "cpu": _stats(image_cpu), "hands": image_hands}
    out["tracking"] = tracking_summary(*timed(lambda vi: f"video{vi}"))
    gc.collect()
    out["rss_mb_after_frames"] = _rss_mb()
    out["frames"] = len(image_ms)

    # Memory with several clients tracking at once: frames dealt round-robin to 8 sessions.
    dealt = 0
    while dealt < SESSION_FRAMES:
        for video in videos:
            for rgb in frames(video):
                engine.process(rgb, f"client{dealt % SESSIONS}")
                dealt += 1
                if dealt >= SESSION_FRAMES:
                    break
            if dealt >= SESSION_FRAMES:
                break
    gc.collect()
    out["rss_mb_after_8_sessions"] = _rss_mb()
    for s in range(SESSIONS):
        engine.end_session(f"client{s}")

    if engine_name == "litert":
        engine.detect_interval_frames = 5
        out["tracking_interval5"] = tracking_summary(*timed(lambda vi: f"video{vi}"))
    engine.close()
    return out


# -- parity figures (the graph runs in this parent process) ----------------------------------------


def parity(complexity: str) -> dict[str, Any]:
    """LiteRT vs the graph on every fixture photo, the composed frames and the videos."""
    import mediapipe as mp
    import numpy as np

    from server.model.litert import LiteRTEngine
    from tests.test_litert_parity import COMPLEXITIES as LEVELS
    from tests.test_litert_parity import (
        COMPOSED,
        PHOTOS,
        VIDEO_CASES,
        compare_tracking,
        graph_hands,
        load_rgb,
    )

    engine = LiteRTEngine(complexity, max_hands=2)  # type: ignore[arg-type]
    graph = mp.solutions.hands.Hands(
        static_image_mode=True, max_num_hands=2, model_complexity=LEVELS[complexity], min_detection_confidence=0.5
    )
    sets: dict[str, list[tuple[Any, Any]]] = {}
    for photo in PHOTOS:
        sets.setdefault(photo.parent.name, []).append((photo.name, load_rgb(photo)))
    sets["composed"] = [(name, np.ascontiguousarray(build())) for name, (build, _) in COMPOSED.items()]
    out: dict[str, Any] = {"photos": {}, "videos": {}}
    for name, items in sets.items():
        same_count = hands = same_label = 0
        means: list[float] = []
        max_abs = 0.0
        for _, rgb in items:
            ref = graph_hands(graph.process(rgb))
            got, _ = engine.process(rgb, None)
            same_count += len(ref) == len(got)
            for r, g in zip(ref, got, strict=False):
                hands += 1
                same_label += r.label == g.label
                means.append(float(np.linalg.norm(r.landmarks[:, :2] - g.landmarks[:, :2], axis=1).mean()))
                max_abs = max(max_abs, float(np.abs(r.landmarks - g.landmarks).max()))
        out["photos"][name] = {
            "images": len(items),
            "same_hand_count": same_count,
            "hands": hands,
            "same_handedness": same_label,
            "mean_distance_avg": float(np.mean(means)) if means else None,
            "mean_distance_max": max(means) if means else None,
            "max_abs_coordinate_diff": max_abs if means else None,
        }
    graph.close()
    engine.close()
    for case, videos, interval in VIDEO_CASES:
        frames, ref_hand, got_hand, distances = compare_tracking(videos, interval, complexity)
        out["videos"][case] = {
            "frames": frames,
            "share_with_hand_graph": round(ref_hand / frames, 4),
            "share_with_hand_litert": round(got_hand / frames, 4),
            "median_distance": float(np.median(distances)) if distances else None,
            "p95_distance": float(np.percentile(distances, 95)) if distances else None,
            "max_distance": max(distances) if distances else None,
        }
    return out


def parity_markdown(report: dict[str, Any]) -> list[str]:
    lines = [
        "## Parity with the MediaPipe graph",
        "",
        "Image mode: `mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=c,",
        "min_detection_confidence=0.5)` vs `LiteRTEngine(c, max_hands=2)`, the same fitted pixels.",
        "Distance: per hand, the mean over 21 landmarks of the (x, y) distance, normalised to the frame.",
        "Thresholds (tests): 0.002 per hand.",
        "",
        "| models | set | images | same hand count | hands | same handedness | mean dist (avg) | mean dist (max) "
        "| max abs coord diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.1e}"

    for complexity, figures in report["parity"].items():
        for name, f in figures["photos"].items():
            lines.append(
                f"| {complexity} | {name} | {f['images']} | {f['same_hand_count']} | {f['hands']} | "
                f"{f['same_handedness']} | {fmt(f['mean_distance_avg'])} | {fmt(f['mean_distance_max'])} | "
                f"{fmt(f['max_abs_coordinate_diff'])} |"
            )
    lines += [
        "",
        "Tracking: each case streamed as one session; the graph in tracking mode (one `Hands` object,",
        "`min_tracking_confidence=0.5`). Per-frame distance: mean over the graph's hands of the distance to the",
        "nearest LiteRT hand. Thresholds (tests): share of frames with a hand within 0.02, median <= 0.005.",
        "",
        "| models | case | frames | share with hand (graph / LiteRT) | median dist | p95 dist | max dist |",
        "|---|---|---|---|---|---|---|",
    ]
    for complexity, figures in report["parity"].items():
        for case, f in figures["videos"].items():
            lines.append(
                f"| {complexity} | {case} | {f['frames']} | {f['share_with_hand_graph']:.3f} / "
                f"{f['share_with_hand_litert']:.3f} | {fmt(f['median_distance'])} | {fmt(f['p95_distance'])} | "
                f"{fmt(f['max_distance'])} |"
            )
    lines.append("")
    return lines


# -- parent: frames, children, tables -----------------------------------------------------------------


def write_frames(frame_dir: Path) -> list[str]:
    import cv2

    from tests.bench.common import FIXTURES

    names = []
    for vi, video in enumerate(sorted((FIXTURES / "videos").glob("*.mp4"))):
        names.append(video.name)
        cap = cv2.VideoCapture(str(video))
        i = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                h, w = bgr.shape[:2]
                s = min(1.0, 640 / w, 480 / h)
                size = (max(1, round(w * s)), max(1, round(h * s)))
                if size != (w, h):
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(frame_dir / f"v{vi}_{i:05d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
                i += 1
        finally:
            cap.release()
    return names


def run_child(engine: str, complexity: str, frame_dir: Path) -> dict[str, Any]:
    from tests.bench.common import REPO

    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_engines", "--child", engine, complexity, str(frame_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{engine}/{complexity} child failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def markdown(report: dict[str, Any]) -> str:
    lines = speed_markdown(report) if "runs" in report else ["# Hand engines: MediaPipe graph vs LiteRT", ""]
    if "parity" in report:
        lines += parity_markdown(report)
    return "\n".join(lines)


def speed_markdown(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    lines = [
        "# Hand engines: MediaPipe graph vs LiteRT",
        "",
        "Written by `python -m tests.bench.bench_engines`; numbers from one run, engine level (no server).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}. "
        f"Load average at start {report['loadavg_start']}, at end {report['loadavg_end']} "
        "(the box is shared, so latencies are indicative).",
        "",
        f"Frames: {' + '.join(report['videos'])}, {report['frames']} frames fitted within 640x480; "
        "latency is `engine.process` only (no decoding), after "
        f"{WARMUP_FRAMES} warm-up frames; max_hands 2.",
        "",
        "## Latency per frame (ms)",
        "",
        "Wall time is what a client waits; CPU time (the process's, all threads) is what the frame",
        "costs the machine and moves less when other work shares the box.",
        "",
        "| engine | models | mode | p50 | p95 | mean | CPU p50 | CPU mean | hands found |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        modes = [("image", r["image"]), ("tracking", r["tracking"])]
        if "tracking_interval5" in r:
            modes[1] = ("tracking, detect every frame below max hands (graph rule)", r["tracking"])
            modes.append(("tracking, detect_interval_frames=5", r["tracking_interval5"]))
            modes.append(("  frames answered by tracking alone (interval 5)", r["tracking_interval5"]["landmark_only"]))
        for mode, s in modes:
            hands = s.get("hands", "")
            cpu = s.get("cpu", {})
            cells = [
                r["engine"],
                r["complexity"],
                mode,
                s["p50_ms"],
                s["p95_ms"],
                s["mean_ms"],
                cpu.get("p50_ms", ""),
                cpu.get("mean_ms", ""),
                hands,
            ]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        "## Worker-style memory (RSS, MiB)",
        "",
        "A fresh process importing only what the engine needs. MediaPipe builds one image-mode graph at",
        "load and one graph per tracking session; LiteRT keeps one pair of interpreters for all sessions.",
        "",
        "| engine | models | after imports | after load | after all frames (1 session at a time) "
        f"| after {SESSIONS} tracking sessions | load ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['engine']} | {r['complexity']} | {r['rss_mb_imported']} | {r['rss_mb_loaded']} | "
            f"{r['rss_mb_after_frames']} | {r['rss_mb_after_8_sessions']} | {r['load_ms']} |"
        )
    lines.append("")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "COMPLEXITY", "FRAME_DIR"))
    parser.add_argument("--only", choices=("speed", "parity"), help="run one half of the benchmark")
    args = parser.parse_args(argv)
    if args.child:
        engine, complexity, frame_dir = args.child
        print(json.dumps(child(engine, complexity, Path(frame_dir))))
        return 0

    from tests.bench.common import RESULTS, machine

    report: dict[str, Any] = {}
    previous = RESULTS / "bench_engines.json"
    if args.only and previous.is_file():
        # Re-measuring one half keeps the other half of the last run.
        report = json.loads(previous.read_text())
    report.update(machine=machine(), loadavg_start=[round(x, 2) for x in os.getloadavg()])
    if args.only != "parity":
        with tempfile.TemporaryDirectory(prefix="bench_engines_") as tmp:
            report["videos"] = write_frames(Path(tmp))
            runs = []
            for engine in ENGINES:
                for complexity in COMPLEXITIES:
                    print(f"bench_engines: {engine} {complexity}", flush=True)
                    runs.append(run_child(engine, complexity, Path(tmp)))
        report["frames"] = runs[0]["frames"]
        report["runs"] = runs
    if args.only != "speed":
        report["parity"] = {}
        for complexity in COMPLEXITIES:
            print(f"bench_engines: parity {complexity}", flush=True)
            report["parity"][complexity] = parity(complexity)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_engines.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "bench_engines.md").write_text(markdown(report))
    print((RESULTS / "bench_engines.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
