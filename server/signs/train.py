"""Train the built-in ASL letters and measure them: ``python -m server.signs.train``.

Owns the reproducible recipe behind ``builtin_letters.npz``: which fixture rows train, which
calibrate the "no sign" threshold and which measure; the augmentation; the MLP training loop
(plain numpy, Adam); and the evaluation written to ``results/signs_eval.md`` and
``results/signs_eval.json``. The server never imports this module.

Data (``shared/fixtures/landmarks``): one signer, frames 0-299 of every letter in capture order;
neighbouring frames are near-copies, so the split is by frame range with gaps:

* measure a model trained on frames 0-179, calibrate its threshold on 195-239, test on 255-299;
* then ship a model trained with the same recipe on all frames 0-299 and the calibrated
  threshold (the fixture's frames >= 300 are held out from us altogether).

The rows are raw MediaPipe image coordinates of a right hand on a mirrored frame (the index
knuckle lies to the image left of the little-finger knuckle on the flat-palm B), so they are
flipped left-right into the canonical hand of ``features.py``. J and Z are motion letters and
are left out. The aspect ratio of the capture is unknown, so training stretches y by a random
factor (see :func:`augment`), which also covers 4:3 vs 16:9 cameras at serving time.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from server.landmarks import NUM_LANDMARKS
from server.signs.classifier import (
    DEFAULT_WEIGHTS_PATH,
    IntArray,
    LetterModel,
    save_letter_model,
)
from server.signs.config import SignsConfig
from server.signs.features import (
    FloatArray,
    features_from_points,
    points_from_keypoints,
)
from server.signs.recognizer import Recognizer
from server.signs.store import SqliteSignStore

REPO = Path(__file__).resolve().parents[2]
BoolArray = npt.NDArray[np.bool_]
DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures" / "landmarks"
ASL_CSV = "graudt_asl_alphabet/asl_alphabet_landmarks.csv"
GESTURE_CSV = "kazuhito00_hand_signs/keypoint.csv"
GESTURE_LABELS_CSV = "kazuhito00_hand_signs/keypoint_classifier_label.csv"
#: Motion letters: no single hand shape.
MOTION_LETTERS = frozenset({"J", "Z"})

#: Frame ranges [start, stop) of the measured split; the gaps keep near-copies apart.
TRAIN_FRAMES = (0, 180)
CALIBRATE_FRAMES = (195, 240)
TEST_FRAMES = (255, 300)

SEED = 20240601
HIDDEN_UNITS = 64
EPOCHS = 40
BATCH = 128
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
#: Augmentation: in-plane tilt up to +-20 degrees, y stretched by 0.7-1.43 (aspect ratio),
#: per-point jitter of 4% of the palm. Two augmented copies per real row per epoch.
MAX_TILT_RAD = 0.35
MAX_STRETCH = 1.43
JITTER = 0.04
AUGMENTED_COPIES = 2
#: Prototypes kept for the "no letter" distance: one row in this many.
PROTOTYPE_STEP = 10
#: The "no letter" threshold is UNKNOWN_MARGIN times this quantile of the distances on the
#: calibration frames. The margin is there because the fixture has one signer: another
#: person's letters lie farther from these prototypes (the Kazuhito00 gestures, made by
#: someone else, show it), while random and scrambled hands lie far beyond (see the report).
UNKNOWN_QUANTILE = 0.95
UNKNOWN_MARGIN = 2.0
#: Probability below which a letter is not reported (mirrors the SignsConfig default).
MIN_CONFIDENCE = 0.5
#: Few-shot check: examples taught per gesture.
FEW_SHOT = 10


@dataclass(frozen=True, slots=True)
class Letters:
    """The ASL fixture: canonical points, letter index, frame number, letter names."""

    points: FloatArray
    y: IntArray
    frames: IntArray
    labels: tuple[str, ...]


def load_letters(path: Path) -> Letters:
    """Read the ASL alphabet CSV, drop J and Z, flip every row onto the canonical hand."""
    names: list[str] = []
    frames: list[int] = []
    values: list[list[float]] = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            if row[0] in MOTION_LETTERS:
                continue
            names.append(row[0])
            frames.append(int(row[1]))
            values.append([float(v) for v in row[2:]])
    points = np.array(values, dtype=np.float64).reshape(-1, NUM_LANDMARKS, 3)
    points[:, :, 0] *= -1.0  # mirrored right hand -> canonical (see module docstring)
    labels = tuple(sorted(set(names)))
    y = np.array([labels.index(n) for n in names], dtype=np.int64)
    return Letters(points=points, y=y, frames=np.array(frames, dtype=np.int64), labels=labels)


def load_gestures(fixtures: Path) -> tuple[tuple[str, ...], IntArray, FloatArray]:
    """Kazuhito00's keypoint table: (label names, label index per row, (N, 42) keypoints)."""
    labels = tuple(
        line.strip() for line in (fixtures / GESTURE_LABELS_CSV).read_text(encoding="utf-8-sig").splitlines()
    )
    rows = np.loadtxt(fixtures / GESTURE_CSV, delimiter=",", dtype=np.float64)
    return tuple(n for n in labels if n), rows[:, 0].astype(np.int64), rows[:, 1:]


def frame_mask(frames: IntArray, span: tuple[int, int]) -> BoolArray:
    return (frames >= span[0]) & (frames < span[1])


def augment(points: FloatArray, rng: np.random.Generator, copies: int) -> tuple[FloatArray, IntArray]:
    """Random tilt, aspect stretch and jitter of ``copies`` resampled rows per input row.

    Returns:
        (augmented points, index of the source row of each).
    """
    n = len(points) * copies
    source = rng.integers(0, len(points), n)
    q = points[source, :, :2] - points[source, :1, :2]
    stretch = np.exp(rng.uniform(-np.log(MAX_STRETCH), np.log(MAX_STRETCH), n))
    q[:, :, 1] *= stretch[:, None]
    angle = rng.uniform(-MAX_TILT_RAD, MAX_TILT_RAD, n)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = q[:, :, 0] * cos - q[:, :, 1] * sin
    y = q[:, :, 0] * sin + q[:, :, 1] * cos
    q = np.stack([x, y], axis=2)
    palm = np.linalg.norm(q[:, 9], axis=1)[:, None, None]
    q += rng.normal(0.0, JITTER, q.shape) * palm
    out = np.zeros((n, NUM_LANDMARKS, 3))
    out[:, :, :2] = q
    return out, source.astype(np.int64)


def train_letter_model(
    points: FloatArray, y: IntArray, labels: tuple[str, ...], *, seed: int, unknown_distance: float
) -> LetterModel:
    """Fit the MLP and the per-letter centres on ``points`` (canonical, (N, 21, 3))."""
    rng = np.random.default_rng(seed)
    real = features_from_points(points)
    mean = real.mean(axis=0)
    std = real.std(axis=0) + 1e-6
    d, k, h = real.shape[1], len(labels), HIDDEN_UNITS
    params = [
        rng.normal(0.0, np.sqrt(2.0 / d), (d, h)),
        np.zeros(h),
        rng.normal(0.0, np.sqrt(1.0 / h), (h, k)),
        np.zeros(k),
    ]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(EPOCHS):
        extra, source = augment(points, rng, AUGMENTED_COPIES)
        feats = np.concatenate([features_from_points(extra), real])
        targets = np.concatenate([y[source], y])
        z = (feats - mean) / std
        order = rng.permutation(len(z))
        for start in range(0, len(z), BATCH):
            batch = order[start : start + BATCH]
            xb, yb = z[batch], targets[batch]
            w1, b1, w2, b2 = params
            hidden = np.maximum(xb @ w1 + b1, 0.0)
            logits = hidden @ w2 + b2
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            probs[np.arange(len(batch)), yb] -= 1.0
            probs /= len(batch)
            grad_hidden = (probs @ w2.T) * (hidden > 0)
            grads = [
                xb.T @ grad_hidden + WEIGHT_DECAY * w1,
                grad_hidden.sum(axis=0),
                hidden.T @ probs + WEIGHT_DECAY * w2,
                probs.sum(axis=0),
            ]
            step += 1
            for i, (param, g) in enumerate(zip(params, grads, strict=True)):
                first[i] = 0.9 * first[i] + 0.1 * g
                second[i] = 0.999 * second[i] + 0.001 * g * g
                update = LEARNING_RATE * (first[i] / (1 - 0.9**step)) / (np.sqrt(second[i] / (1 - 0.999**step)) + 1e-8)
                np.subtract(param, update, out=param)  # in place: params[i] is the same array
    # Every PROTOTYPE_STEP-th row in capture order: the rows are near-copies of their neighbours.
    prototypes = real[::PROTOTYPE_STEP]
    return LetterModel(
        labels=labels,
        examples=tuple(int((y == c).sum()) for c in range(k)),
        mean=mean,
        std=std,
        w1=params[0],
        b1=params[1],
        w2=params[2],
        b2=params[3],
        prototypes=prototypes,
        unknown_distance=unknown_distance,
    )


def implausible_hands(real: FloatArray, rng: np.random.Generator, n: int) -> dict[str, FloatArray]:
    """Hands no signer makes, to measure how often "no sign" is answered.

    Returns:
        name -> (n, 21, 3) points: ``uniform`` (21 points anywhere in the frame), ``scrambled``
        (a real hand's points in a random order), ``jittered`` (every point of a real hand moved
        by about half a palm), ``stretched`` (a real hand squashed to a third of its height).
    """
    picks = real[rng.integers(0, len(real), n)]
    uniform = np.zeros((n, NUM_LANDMARKS, 3))
    uniform[:, :, :2] = rng.uniform(0.0, 1.0, (n, NUM_LANDMARKS, 2))
    scrambled = np.array([p[rng.permutation(NUM_LANDMARKS)] for p in picks])
    palm = np.linalg.norm(picks[:, 9, :2] - picks[:, 0, :2], axis=1)[:, None, None]
    jittered = picks.copy()
    jittered[:, :, :2] += rng.normal(0.0, 0.5, (n, NUM_LANDMARKS, 2)) * palm
    stretched = picks.copy()
    stretched[:, :, 1] *= 1.0 / 3.0
    return {"uniform": uniform, "scrambled": scrambled, "jittered": jittered, "stretched": stretched}


def rotate(points: FloatArray, degrees: float) -> FloatArray:
    a = np.radians(degrees)
    out = points.copy()
    out[:, :, 0] = points[:, :, 0] * np.cos(a) - points[:, :, 1] * np.sin(a)
    out[:, :, 1] = points[:, :, 0] * np.sin(a) + points[:, :, 1] * np.cos(a)
    return out


def accepted(model: LetterModel, points: FloatArray, min_confidence: float) -> tuple[IntArray, BoolArray]:
    """Predicted letter index and whether it would be reported (not null)."""
    best, prob, dist = model.predict(features_from_points(points))
    return best, (prob >= min_confidence) & (dist <= model.unknown_distance)


def evaluate(letters: Letters, fixtures: Path, *, seed: int) -> tuple[dict[str, object], float]:
    """Train on the train frames, calibrate, test; returns the report and the threshold."""
    train = frame_mask(letters.frames, TRAIN_FRAMES)
    calib = frame_mask(letters.frames, CALIBRATE_FRAMES)
    test = frame_mask(letters.frames, TEST_FRAMES)
    model = train_letter_model(
        letters.points[train], letters.y[train], letters.labels, seed=seed, unknown_distance=np.inf
    )
    _, _, calib_dist = model.predict(features_from_points(letters.points[calib]))
    threshold = UNKNOWN_MARGIN * float(np.quantile(calib_dist, UNKNOWN_QUANTILE))
    model = dataclasses.replace(model, unknown_distance=threshold)

    k = len(letters.labels)
    best, shown = accepted(model, letters.points[test], MIN_CONFIDENCE)
    truth = letters.y[test]
    confusion = np.zeros((k, k + 1), dtype=np.int64)  # last column: null
    for t, b, s in zip(truth, best, shown, strict=True):
        confusion[t, b if s else k] += 1
    top1 = float((best == truth).mean())
    report: dict[str, object] = {
        "split": {"train_frames": TRAIN_FRAMES, "calibrate_frames": CALIBRATE_FRAMES, "test_frames": TEST_FRAMES},
        "test_rows": int(test.sum()),
        "top1_accuracy_ignoring_null": round(top1, 4),
        "accuracy_null_counts_as_wrong": round(float(((best == truth) & shown).mean()), 4),
        "null_rate_held_out": round(float(1 - shown.mean()), 4),
        "wrong_when_shown": round(float(((best != truth) & shown).sum() / max(1, shown.sum())), 4),
        "unknown_distance": round(threshold, 4),
        "min_confidence": MIN_CONFIDENCE,
        "per_letter_accuracy": {
            letters.labels[c]: round(float(confusion[c, c] / confusion[c].sum()), 3) for c in range(k)
        },
        "confusions": [
            {"true": letters.labels[t], "said": "null" if s == k else letters.labels[s], "rows": int(confusion[t, s])}
            for t, s in sorted(
                ((t, s) for t in range(k) for s in range(k + 1) if s != t and confusion[t, s] > 0),
                key=lambda ts: -confusion[ts[0], ts[1]],
            )
        ][:15],
    }
    tilt: dict[str, float] = {}
    for degrees in (-30, -15, 15, 30):
        b, _ = accepted(model, rotate(letters.points[test], degrees), MIN_CONFIDENCE)
        tilt[f"{degrees:+d}"] = round(float((b == truth).mean()), 4)
    squashed = letters.points[test].copy()
    squashed[:, :, 1] *= 0.75  # the same hands seen by a 16:9 camera instead of 4:3
    b, _ = accepted(model, squashed, MIN_CONFIDENCE)
    tilt["aspect_16_9"] = round(float((b == truth).mean()), 4)
    report["top1_under_tilt_and_aspect"] = tilt

    rng = np.random.default_rng(seed + 1)
    implausible = implausible_hands(letters.points[test], rng, 2000)
    report["null_rate_implausible"] = {
        name: round(float(1 - accepted(model, pts, MIN_CONFIDENCE)[1].mean()), 4) for name, pts in implausible.items()
    }
    names, idx, keypoints = load_gestures(fixtures)
    gesture_points = points_from_keypoints(keypoints)
    gb, gshown = accepted(model, gesture_points, MIN_CONFIDENCE)
    report["other_gestures_kazuhito00"] = {
        names[g]: {
            "null_rate": round(float(1 - gshown[idx == g].mean()), 3),
            "most_said": _most_common([letters.labels[b] for b in gb[(idx == g) & gshown]]),
        }
        for g in range(len(names))
    }
    test_letters = Letters(
        points=letters.points[test], y=letters.y[test], frames=letters.frames[test], labels=letters.labels
    )
    report["few_shot"] = few_shot(names, idx, keypoints, model, test_letters)
    return report, threshold


def few_shot(
    names: tuple[str, ...], idx: IntArray, keypoints: FloatArray, letters: LetterModel, letter_test: Letters
) -> dict[str, object]:
    """Teach FEW_SHOT examples per gesture to a recognizer with default settings and ``letters``;
    measure its answers on held-out rows under two splits (recording order within each gesture):

    * ``interleaved``: examples evenly spread over all rows; held out: rows more than 15 rows
      from a taught one (what ``tests/test_signs_recognizer.py`` asserts >= 90% on);
    * ``time_split``: examples from the first 60% of rows, held out: the last 30%.

    Also, with the gestures taught: how many held-out letter rows still get their letter, and
    how many uniform random hands get no sign.
    """
    out: dict[str, object] = {"examples_per_label": FEW_SHOT}
    for split in ("interleaved", "time_split"):
        recognizer = Recognizer(SignsConfig(db_path=":memory:"), letters, SqliteSignStore(":memory:"))
        held: list[tuple[str, FloatArray]] = []
        for g, name in enumerate(names):
            rows = keypoints[idx == g]
            n = len(rows)
            if split == "interleaved":
                pick = ((np.arange(FEW_SHOT) + 0.5) * n / FEW_SHOT).astype(int)
                near = np.zeros(n, dtype=bool)
                for i in pick:
                    near[max(0, i - 15) : i + 16] = True
                test_rows = rows[~near]
            else:
                pick = np.linspace(0, int(0.6 * n) - 1, FEW_SHOT).round().astype(int)
                test_rows = rows[int(0.7 * n) :]
            recognizer.import_keypoints(name, rows[pick])
            held += [(name, row) for row in test_rows]
        said = [recognizer.classify_points(points_from_keypoints(row[None])) for _, row in held]
        result: dict[str, object] = {
            "held_out_rows": len(held),
            "recognised": round(
                float(np.mean([s is not None and s.label == n for s, (n, _) in zip(said, held, strict=True)])), 4
            ),
            "null": round(float(np.mean([s is None for s in said])), 4),
            "said_a_letter": round(float(np.mean([s is not None and s.source.value == "builtin" for s in said])), 4),
        }
        if split == "interleaved":
            letter_said = [recognizer.classify_points(p[None]) for p in letter_test.points]
            result["letters_still_recognised"] = round(
                float(
                    np.mean(
                        [
                            s is not None and s.label == letter_test.labels[y]
                            for s, y in zip(letter_said, letter_test.y, strict=True)
                        ]
                    )
                ),
                4,
            )
            rng = np.random.default_rng(SEED + 2)
            uniform = rng.uniform(0.0, 1.0, (1000, NUM_LANDMARKS, 3))
            result["uniform_random_null"] = round(
                float(np.mean([recognizer.classify_points(p[None]) is None for p in uniform])), 4
            )
        out[split] = result
        recognizer.close()
    return out


def _most_common(items: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])[:3]


def render_markdown(report: dict[str, object]) -> str:
    """The evaluation as a short Markdown page (what README quotes)."""
    r = report
    lines = [
        "# Built-in letters: held-out evaluation",
        "",
        "Written by `python -m server.signs.train` (`make train`); numbers from one run.",
        "",
        f"Data: ASL alphabet fixture (one signer), 24 static letters. Model trained on frames "
        f"{TRAIN_FRAMES[0]}-{TRAIN_FRAMES[1] - 1}, 'no sign' threshold calibrated on frames "
        f"{CALIBRATE_FRAMES[0]}-{CALIBRATE_FRAMES[1] - 1}, measured on frames {TEST_FRAMES[0]}-{TEST_FRAMES[1] - 1} "
        f"({r['test_rows']} rows). The shipped model is retrained on frames 0-299 with the same recipe.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| top-1 accuracy (forced choice) | {r['top1_accuracy_ignoring_null']:.1%} |",
        f"| correct and shown (null counts as wrong) | {r['accuracy_null_counts_as_wrong']:.1%} |",
        f"| null rate on held-out letters | {r['null_rate_held_out']:.1%} |",
        f"| wrong among shown | {r['wrong_when_shown']:.1%} |",
        f"| unknown distance threshold ({UNKNOWN_MARGIN} x q{UNKNOWN_QUANTILE} of calibration) "
        f"| {r['unknown_distance']} |",
        "",
        "Null rate on implausible hands (2,000 each):",
        "",
        "| hands | null rate |",
        "|---|---|",
    ]
    implausible = r["null_rate_implausible"]
    assert isinstance(implausible, dict)
    lines += [f"| {name} | {rate:.1%} |" for name, rate in implausible.items()]
    tilt = r["top1_under_tilt_and_aspect"]
    assert isinstance(tilt, dict)
    lines += ["", "Top-1 accuracy on the held-out rows turned in the image plane or squashed:", ""]
    lines += ["| change | top-1 |", "|---|---|"] + [f"| {k} | {v:.1%} |" for k, v in tilt.items()]
    per = r["per_letter_accuracy"]
    assert isinstance(per, dict)
    lines += ["", "Per letter (correct and shown): " + ", ".join(f"{k} {v:.0%}" for k, v in per.items()), ""]
    confusions = r["confusions"]
    assert isinstance(confusions, list)
    lines += ["Largest confusions (true -> said: rows):", ""]
    lines += [f"- {c['true']} -> {c['said']}: {c['rows']}" for c in confusions]
    gestures = r["other_gestures_kazuhito00"]
    assert isinstance(gestures, dict)
    lines += ["", "Real non-letter gestures (Kazuhito00 table) shown to the letter model:", ""]
    lines += [f"- {g}: null {v['null_rate']:.0%}, most often said {v['most_said']}" for g, v in gestures.items()]
    fs = r["few_shot"]
    assert isinstance(fs, dict)
    inter, timed = fs["interleaved"], fs["time_split"]
    lines += [
        "",
        f"Taught signs, few-shot: {fs['examples_per_label']} examples each of Open/Close/Pointer (Kazuhito00), "
        "default settings, with the letters above:",
        "",
        "| split | held-out rows | recognised | null | said a letter |",
        "|---|---|---|---|---|",
        f"| examples spread over all rows; rows > 15 from a taught one | {inter['held_out_rows']} "
        f"| {inter['recognised']:.1%} | {inter['null']:.1%} | {inter['said_a_letter']:.1%} |",
        f"| examples from the first 60%; last 30% held out | {timed['held_out_rows']} "
        f"| {timed['recognised']:.1%} | {timed['null']:.1%} | {timed['said_a_letter']:.1%} |",
        "",
        f"With those three taught: held-out letters still recognised {inter['letters_still_recognised']:.1%}; "
        f"uniform random hands answered null {inter['uniform_random_null']:.1%}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    """Evaluate, retrain on all frames, write the weights and the reports."""
    parser = argparse.ArgumentParser(prog="python -m server.signs.train", description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="shared/fixtures/landmarks")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS_PATH, help="where to write the .npz")
    parser.add_argument("--results", type=Path, default=REPO / "results", help="where signs_eval.* go")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    letters = load_letters(args.fixtures / ASL_CSV)
    report, threshold = evaluate(letters, args.fixtures, seed=args.seed)
    final = train_letter_model(letters.points, letters.y, letters.labels, seed=args.seed, unknown_distance=threshold)
    save_letter_model(final, args.weights)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "signs_eval.json").write_text(json.dumps(report, indent=1) + "\n")
    markdown = render_markdown(report)
    (args.results / "signs_eval.md").write_text(markdown)
    out(markdown)
    out(f"weights: {args.weights} ({args.weights.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
