"""The long fuzzing run: the properties of ``tests/test_fuzz_*.py`` with many more examples.

``python -m tests.bench.bench_fuzz [--examples 20000] [--seed 0]``

Runs frame decoding (``decode_frame``) and client JSON parsing (``parse_client_message``,
``parse_hands``) on Hypothesis-generated inputs, counts what came out (results and each error
code), and measures this process's RSS before and after and its peak (``VmHWM``), so "bounded
memory" is a number. Any other exception fails the run with the falsifying input printed.
Writes ``results/bench_fuzz.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.bench.common import machine, write_results
from tests.test_fuzz_frames import FRAMES, check_decode, seeds
from tests.test_fuzz_messages import (
    HANDS_DOC,
    JSON_VALUES,
    MESSAGE_DOC,
    check_hands_document,
    check_message,
    dumps_loosely,
)


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_property(
    name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], str], examples: int, rng_seed: int
) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()

    @seed(rng_seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(value: Any) -> None:
        outcomes[check(value)] += 1

    rss_before = psutil.Process().memory_info().rss / 2**20
    tracemalloc.start()
    started = time.perf_counter()
    prop()
    elapsed = time.perf_counter() - started
    # What server code allocated and still holds: the process RSS also counts Hypothesis's
    # own record of every example it generated, which grows with the run.
    held = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*/server/*")])
    server_held_kb = sum(stat.size for stat in held.statistics("filename")) / 1024
    tracemalloc.stop()
    rss_after = psutil.Process().memory_info().rss / 2**20
    total = sum(outcomes.values())
    return {
        "property": name,
        "examples": total,
        "outcomes": dict(outcomes.most_common()),
        "seconds": round(elapsed, 1),
        "ms_per_example": round(elapsed / max(1, total) * 1e3, 3),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1),
        "held_by_server_code_kb": round(server_held_kb, 1),
        "peak_rss_mb_so_far": round(vm_hwm_mb(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="examples per property")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for frame in seeds():  # the decoders' one-time allocations are not growth
        check_decode(frame)
    runs = [
        run_property("decode_frame(bytes)", FRAMES, check_decode, args.examples, args.seed),
        run_property("parse_client_message(text)", st.text(max_size=300), check_message, args.examples, args.seed),
        run_property(
            "parse_client_message(json)",
            MESSAGE_DOC.map(dumps_loosely),
            check_message,
            args.examples,
            args.seed,
        ),
        run_property("parse_hands(object)", HANDS_DOC | JSON_VALUES, check_hands_document, args.examples, args.seed),
    ]
    result = {"machine": machine(), "examples_per_property": args.examples, "seed": args.seed, "runs": runs}
    lines = [
        "# Fuzzing: only SignwireError comes out",
        "",
        f"`python -m tests.bench.bench_fuzz --examples {args.examples} --seed {args.seed}` on"
        f" {result['machine']['cpu']} ({result['machine']['cores']} cores). Any exception other than a"
        " SignwireError would have failed the run; none did.",
        "",
        "Memory: *held by server code* is what `server/` allocated during the run and still holds"
        " at its end (tracemalloc); the process RSS also grows with Hypothesis's own record of"
        " the examples it generated, so it bounds the parsers' memory only from above.",
        "",
        "| property | examples | outcomes | ms/example | held by server code (KB) | RSS before -> after (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        outcomes = ", ".join(f"{k} {v}" for k, v in r["outcomes"].items())
        lines.append(
            f"| `{r['property']}` | {r['examples']} | {outcomes} | {r['ms_per_example']} |"
            f" {r['held_by_server_code_kb']} | {r['rss_before_mb']} -> {r['rss_after_mb']} |"
        )
    path = write_results("bench_fuzz", result, "\n".join(lines) + "\n")
    print(json.dumps(runs, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
