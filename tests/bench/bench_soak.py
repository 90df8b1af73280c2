"""The 512 MB budget, enforced: the whole server inside a memory cgroup under a long stream.

``python -m tests.bench.bench_soak [--minutes 10] [--clients 32] [--fps 5] [--limit-mb 512]``

Creates a memory cgroup (v2 or v1, whichever this machine mounts) *inside the cgroup this
script already runs in*, limited to ``--limit-mb`` with no swap, starts ``python -m server`` in
it (its model worker is spawned later and inherits it), streams the fixture videos as 70% JPEGs
from ``--clients`` WebSocket clients at ``--fps`` each for ``--minutes``, and writes
``results/bench_soak.json`` and ``.md``:

- OOM kills inside the cgroup (``memory.events`` / ``memory.oom_control``; must be 0),
- peak memory: the process tree's RSS (``/api/memory``, sampled every second) and the cgroup's
  own high-water mark (``memory.peak`` / ``memory.max_usage_in_bytes``, which also counts page
  cache charged to the server),
- RSS slope in MB per 1000 frames (least-squares fit of tree RSS against frames processed),
  over the whole run and after the first 10% of frames (warm-up: model load, allocator pools),
- answers, drops and errors by code as the clients saw them, worker restarts.

Every client shares 127.0.0.1, so the per-IP limits are raised for the run (the config written
is in the JSON); everything else is the shipped ``config.toml``. The cgroup is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil
import websockets

from tests.bench.common import machine, percentile, video_jpegs, write_results

CGROUP_ROOT = Path("/sys/fs/cgroup")
MIB = 2**20


# ------------------------------------------------------------------ cgroup


@dataclass
class MemoryCgroup:
    """A memory cgroup this script created; v2 or v1 files behind one interface."""

    path: Path
    version: int

    @classmethod
    def create(cls, limit_mb: int) -> MemoryCgroup:
        """Make a child of this process's own memory cgroup with a hard limit and no swap."""
        name = f"signwire-soak-{os.getpid()}"
        own = Path("/proc/self/cgroup").read_text().splitlines()
        v2 = (CGROUP_ROOT / "cgroup.controllers").is_file()
        if v2:
            relative = next(line.split(":", 2)[2] for line in own if line.startswith("0::"))
            parent = CGROUP_ROOT / relative.lstrip("/")
            subtree = parent / "cgroup.subtree_control"
            if "memory" not in subtree.read_text().split():
                subtree.write_text("+memory")
            path = parent / name
            path.mkdir()
            (path / "memory.max").write_text(str(limit_mb * MIB))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            return cls(path=path, version=2)
        relative = next(line.split(":", 2)[2] for line in own if "memory" in line.split(":", 2)[1].split(","))
        parent = CGROUP_ROOT / "memory" / relative.lstrip("/")
        path = parent / name
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(limit_mb * MIB))
        with contextlib.suppress(OSError):  # only where swap accounting is on
            (path / "memory.memsw.limit_in_bytes").write_text(str(limit_mb * MIB))
        return cls(path=path, version=1)

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def usage_bytes(self) -> int:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return int((self.path / name).read_text())

    def peak_bytes(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def limit_events(self) -> dict[str, int]:
        """How often the limit was hit (v2 ``max``, v1 ``failcnt``): reclaim, not yet OOM."""
        if self.version == 2:
            events = dict(line.split() for line in (self.path / "memory.events").read_text().splitlines())
            return {key: int(value) for key, value in events.items()}
        return {"failcnt": int((self.path / "memory.failcnt").read_text())}

    def remove(self) -> None:
        left = []
        for pid in self.procs_file.read_text().split():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(int(pid))
                process.kill()
                left.append(process)
        psutil.wait_procs(left, timeout=30)  # a cgroup can only be removed once it is empty
        self.path.rmdir()


# ------------------------------------------------------------------ server


@dataclass
class SoakServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    config: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_in_cgroup(cgroup: MemoryCgroup, toml: str, workdir: Path) -> SoakServer:
    """``python -m server`` moved into the cgroup before it execs, so nothing escapes it."""
    from tests.conftest import start_server

    # The shell writes its own pid into the cgroup, then becomes the server.
    launcher = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup.procs_file)]
    server = start_server(toml, command_prefix=launcher)
    (workdir / "config.toml").write_text(toml)
    return SoakServer(process=server.process, port=server.port, log_path=server.log_path, config=tomllib.loads(toml))


# ------------------------------------------------------------------ clients


@dataclass
class ClientStats:
    sent: int = 0
    results: int = 0
    dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    disconnects: int = 0
    disconnect_reasons: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)


async def stream(url: str, frames: list[bytes], *, fps: float, stop_at: float, offset: int, stats: ClientStats) -> None:
    """Send a frame every 1/fps s whether or not answers came (the server drops what it must);
    read answers concurrently. Reconnects if the server closes the connection."""
    interval = 1.0 / fps
    i = offset
    while time.monotonic() < stop_at:
        sent_at: dict[int, float] = {}
        reader: asyncio.Task[None] | None = None
        try:
            async with websockets.connect(url, max_size=None, open_timeout=30) as ws:
                seq = 0
                settled = asyncio.Event()  # every frame sent so far answered or dropped

                async def read(
                    ws: websockets.ClientConnection = ws,
                    sent_at: dict[int, float] = sent_at,
                    settled: asyncio.Event = settled,
                ) -> None:
                    async for raw in ws:
                        answer = json.loads(raw)
                        at = sent_at.pop(answer.get("seq"), None)
                        if answer["type"] == "result":
                            stats.results += 1
                            stats.dropped += answer.get("dropped", 0)
                            if at is not None:
                                stats.latencies_ms.append((time.monotonic() - at) * 1e3)
                        else:
                            stats.errors[answer["code"]] = stats.errors.get(answer["code"], 0) + 1
                        for old in [s for s in sent_at if s < (answer.get("seq") or 0)]:
                            del sent_at[old]  # dropped frames get no answer
                        if not sent_at:
                            settled.set()

                reader = asyncio.create_task(read())
                next_send = time.monotonic()
                while (now := time.monotonic()) < stop_at and not reader.done():
                    if now < next_send:
                        await asyncio.sleep(next_send - now)
                        continue
                    seq += 1
                    settled.clear()
                    sent_at[seq] = time.monotonic()
                    await ws.send(frames[i % len(frames)])
                    stats.sent += 1
                    i += 1
                    next_send += interval
                # Let the last answers arrive before closing.
                with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
                    async with asyncio.timeout(5):
                        await settled.wait()
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await reader
        except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake, TimeoutError) as exc:
            if reader is not None:  # its exception (the same closed connection) is retrieved here
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await reader
            stats.disconnects += 1
            stats.disconnect_reasons[type(exc).__name__] = stats.disconnect_reasons.get(type(exc).__name__, 0) + 1
            await asyncio.sleep(1)


async def sample(
    server: SoakServer, cgroup: MemoryCgroup, started: float, stop_at: float, samples: list[dict[str, Any]]
) -> None:
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < stop_at:
            try:
                async with http.get(f"{server.url}/api/memory", timeout=aiohttp.ClientTimeout(total=10)) as r:
                    memory = await r.json()
                samples.append(
                    {
                        "t_s": round(time.monotonic() - started, 1),
                        "rss_mb": memory["rss_mb"],
                        "frames": memory["frames_processed"],
                        "restarts": memory.get("worker_restarts", 0),
                        "cgroup_mb": round(cgroup.usage_bytes() / MIB, 1),
                        "processes": [[p["role"], p["pid"], p["rss_mb"]] for p in memory["processes"]],
                    }
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                samples.append({"t_s": None, "error": str(exc)})
            await asyncio.sleep(1)


def client_process(
    *, url: str, frames: list[bytes], fps: float, stop_at: float, offsets: list[int], queue: Any
) -> None:
    """One load-generating process: some of the clients, and its own loop lag.

    ``stop_at`` is ``time.monotonic()``, which on Linux is one clock for every process.
    """

    async def go() -> tuple[list[ClientStats], list[float]]:
        stats = [ClientStats() for _ in offsets]
        lags: list[float] = []
        await asyncio.gather(
            measure_lag(stop_at, lags),
            *(
                stream(url, frames, fps=fps, stop_at=stop_at, offset=offset, stats=stat)
                for offset, stat in zip(offsets, stats, strict=True)
            ),
        )
        return stats, lags

    queue.put(asyncio.run(go()))


async def measure_lag(stop_at: float, lags: list[float]) -> None:
    """How late this (client) process's own loop runs: if it is starved, client-side latencies
    and heartbeat-closed connections say more about the load generator than about the server."""
    while time.monotonic() < stop_at:
        before = time.monotonic()
        await asyncio.sleep(0.5)
        lags.append(round((time.monotonic() - before - 0.5) * 1e3, 1))


def server_total_buckets(metrics_text: str) -> dict[str, float]:
    """The server's own arrival-to-answer histogram (cumulative counts by upper bound, s)."""
    prefix = 'signwire_stage_seconds_bucket{le="'
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith(prefix) and 'stage="total"' in line:
            out[line[len(prefix) :].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def slope_mb_per_1000(samples: list[dict[str, Any]], skip_fraction: float) -> float | None:
    points = [(s["frames"], s["rss_mb"]) for s in samples if "frames" in s]
    if len(points) < 3:
        return None
    last_frames = points[-1][0]
    points = [p for p in points if p[0] >= skip_fraction * last_frames]
    frames = np.array([p[0] for p in points], dtype=float)
    rss = np.array([p[1] for p in points], dtype=float)
    if frames.max() - frames.min() < 100:
        return None
    slope, _ = np.polyfit(frames, rss, 1)
    return round(float(slope) * 1000, 3)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    frames = video_jpegs("open_hand_640x360.mp4", limit=150) + video_jpegs("signer_selfie_540x720.mp4", limit=150)
    workdir = Path(tempfile.mkdtemp(prefix="signwire-soak-"))
    toml = (
        f"[server]\nmax_connections = {max(64, args.clients + 8)}\n"
        f"max_connections_per_ip = {args.clients + 8}\n"
        "max_frames_per_s_per_ip = 0\n"
        f'[signs]\ndb_path = "{workdir / "signs.sqlite3"}"\n'
    )
    cgroup = MemoryCgroup.create(args.limit_mb)
    server: SoakServer | None = None
    try:
        server = start_in_cgroup(cgroup, toml, workdir)
        root = psutil.Process(server.process.pid)
        started = time.monotonic()
        stop_at = started + args.minutes * 60
        samples: list[dict[str, Any]] = []
        url = f"ws://127.0.0.1:{server.port}/ws"
        sampler = asyncio.create_task(sample(server, cgroup, started, stop_at, samples))
        # The clients run in several processes: one Python process generating the whole load
        # was itself the bottleneck (its loop stalled for seconds under a loaded machine).
        context = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[tuple[list[ClientStats], list[float]]] = context.Queue()
        procs = max(1, min(args.client_procs, args.clients))
        workers = [
            context.Process(
                target=client_process,
                kwargs={
                    "url": url,
                    "frames": frames,
                    "fps": args.fps,
                    "stop_at": stop_at,
                    "offsets": [k * 37 for k in range(i, args.clients, procs)],
                    "queue": queue,
                },
            )
            for i in range(procs)
        ]
        for worker in workers:
            worker.start()
        await sampler
        loop = asyncio.get_running_loop()
        stats: list[ClientStats] = []
        lags: list[float] = []
        for _ in workers:
            part_stats, part_lags = await loop.run_in_executor(None, queue.get, True, 120)
            stats += part_stats
            lags += part_lags
        for worker in workers:
            worker.join(30)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/metrics") as r:
                metrics_text = await r.text()
            async with http.get(f"{server.url}/api/memory") as r:
                final_memory = await r.json()
            async with http.get(f"{server.url}/readyz") as r:
                ready = await r.json()
        tree = [root, *root.children(recursive=True)]
        server_cpu_s = 0.0
        for p in tree:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                server_cpu_s += times.user + times.system
        server_cpu_s = round(server_cpu_s, 1)
        tree_hwm_mb = {}
        for p in tree:
            with contextlib.suppress(psutil.Error, OSError, StopIteration):
                status = Path(f"/proc/{p.pid}/status").read_text()
                hwm_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
                tree_hwm_mb[f"{p.pid}"] = round(hwm_kb / 1024, 1)
        duration_s = time.monotonic() - started
        server_errors = {
            line.split('code="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics_text.splitlines()
            if line.startswith("signwire_errors_total{")
        }
        server.process.send_signal(signal.SIGTERM)
        exit_code = server.process.wait(timeout=60)
        rss = [s["rss_mb"] for s in samples if "rss_mb" in s]
        client_errors: dict[str, int] = {}
        for s in stats:
            for code, n in s.errors.items():
                client_errors[code] = client_errors.get(code, 0) + n
        latencies = [v for s in stats for v in s.latencies_ms]
        disconnect_reasons: dict[str, int] = {}
        for s in stats:
            for reason, n in s.disconnect_reasons.items():
                disconnect_reasons[reason] = disconnect_reasons.get(reason, 0) + n
        bench_cpu = psutil.Process().cpu_times()
        bench_cpu_s = bench_cpu.user + bench_cpu.system
        last = next(s for s in reversed(samples) if "frames" in s)
        return {
            "machine": machine(),
            "args": {
                "minutes": args.minutes,
                "clients": args.clients,
                "fps": args.fps,
                "limit_mb": args.limit_mb,
                "client_procs": procs,
            },
            "engine": {
                "engine": ready.get("engine"),
                "complexity": ready.get("complexity"),
                "workers": ready.get("workers"),
                "model_processes": len([p for p in final_memory["processes"] if p["role"] == "model"]),
            },
            "config_overrides": server.config,
            "cgroup": {"version": cgroup.version, "path": str(cgroup.path)},
            "duration_s": round(duration_s, 1),
            "oom_kills": cgroup.oom_kills(),
            "limit_events": cgroup.limit_events(),
            "peak_tree_rss_mb": max(rss) if rss else None,
            "peak_cgroup_mb": round(p / MIB, 1) if (p := cgroup.peak_bytes()) is not None else None,
            "process_vm_hwm_mb": tree_hwm_mb,
            "final_tree_rss_mb": rss[-1] if rss else None,
            "rss_slope_mb_per_1000_frames": slope_mb_per_1000(samples, 0.0),
            "rss_slope_mb_per_1000_frames_after_warmup": slope_mb_per_1000(samples, 0.1),
            "frames_sent": sum(s.sent for s in stats),
            "results": sum(s.results for s in stats),
            "dropped": sum(s.dropped for s in stats),
            "frames_processed_by_server": final_memory["frames_processed"],
            "answered_fps": round(sum(s.results for s in stats) / duration_s, 1),
            "client_errors_by_code": client_errors,
            "server_errors_by_code": server_errors,
            "disconnects": sum(s.disconnects for s in stats),
            "worker_restarts": final_memory.get("worker_restarts", last["restarts"]),
            "latency_ms": {
                "p50": percentile(latencies, 50),
                "p95": percentile(latencies, 95),
                "p99": percentile(latencies, 99),
            },
            "server_exit_code": exit_code,
            "disconnect_reasons": disconnect_reasons,
            "server_total_ms_by_bucket": server_total_buckets(metrics_text),
            "client_loop_lag_ms": {"p50": percentile(lags, 50), "max": max(lags) if lags else None},
            "cpu_seconds": {"server_tree": server_cpu_s, "bench_main_process": round(bench_cpu_s, 1)},
            "load_average_at_end": os.getloadavg(),
            "server_warnings": [
                line
                for line in server.log_path.read_text(errors="replace").splitlines()
                if " WARNING " in line or " ERROR " in line
            ][-20:],
            "samples": samples,
        }
    finally:
        if server is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        cgroup.remove()
        shutil.rmtree(workdir, ignore_errors=True)


def markdown(r: dict[str, Any]) -> str:
    a = r["args"]
    lines = [
        "# Soak: the whole server in a memory cgroup",
        "",
        f"`python -m tests.bench.bench_soak --minutes {a['minutes']} --clients {a['clients']} --fps {a['fps']}"
        f" --limit-mb {a['limit_mb']}` on {r['machine']['cpu']} ({r['machine']['cores']} cores), cgroup v"
        f"{r['cgroup']['version']}. {a['clients']} WebSocket clients stream the fixture videos as 70% JPEGs at"
        f" {a['fps']} fps each, without waiting for answers (the server keeps the newest frame per client).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| engine | {r['engine']} |",
        f"| duration | {r['duration_s']} s |",
        f"| OOM kills in the cgroup | **{r['oom_kills']}** |",
        f"| memory limit hit (reclaim events) | {r['limit_events']} |",
        f"| peak tree RSS (server + worker, sampled 1/s) | {r['peak_tree_rss_mb']} MB |",
        f"| peak cgroup usage (memory.peak / max_usage, incl. page cache) | {r['peak_cgroup_mb']} MB |",
        f"| final tree RSS | {r['final_tree_rss_mb']} MB |",
        f"| RSS slope, whole run | {r['rss_slope_mb_per_1000_frames']} MB per 1000 frames |",
        f"| RSS slope after the first 10% of frames | {r['rss_slope_mb_per_1000_frames_after_warmup']}"
        " MB per 1000 frames |",
        f"| frames sent / answered / dropped (newest wins) | {r['frames_sent']} / {r['results']} / {r['dropped']} |",
        f"| frames the server processed | {r['frames_processed_by_server']} ({r['answered_fps']} answers/s) |",
        f"| errors seen by clients, by code | {r['client_errors_by_code'] or 'none'} |",
        f"| errors counted by the server, by code | {r['server_errors_by_code'] or 'none'} |",
        f"| disconnects | {r['disconnects']} |",
        f"| worker restarts | {r['worker_restarts']} |",
        f"| answer latency p50 / p95 / p99 | {r['latency_ms']['p50']} / {r['latency_ms']['p95']} /"
        f" {r['latency_ms']['p99']} ms |",
        f"| server exit code after SIGTERM | {r['server_exit_code']} |",
        f"| server's own arrival-to-answer histogram (cumulative, by upper bound in s) |"
        f" {r['server_total_ms_by_bucket']} |",
        f"| load generator's loop lag p50 / max (its own stalls inflate client latencies) |"
        f" {r['client_loop_lag_ms']['p50']} / {r['client_loop_lag_ms']['max']} ms |",
        f"| disconnects by reason | {r['disconnect_reasons'] or 'none'} |",
        f"| CPU seconds: server tree / load generator main process | {r['cpu_seconds']['server_tree']} /"
        f" {r['cpu_seconds']['bench_main_process']} |",
        f"| load average at the end (the machine was shared) | {r['load_average_at_end']} |",
        "",
        "Per-IP limits were raised for the run because every client is 127.0.0.1:"
        f" `{json.dumps(r['config_overrides'].get('server', {}))}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--limit-mb", type=int, default=512)
    parser.add_argument("--client-procs", type=int, default=4, help="processes the clients are spread over")
    parser.add_argument("--name", default="bench_soak", help="results/NAME.json and .md")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    path = write_results(args.name, result, markdown(result))
    summary = {k: v for k, v in result.items() if k not in ("samples", "machine")}
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")
    return 0 if result["oom_kills"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
