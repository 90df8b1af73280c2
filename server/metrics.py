"""Counters, histograms and the memory snapshot behind ``/metrics`` and ``/api/memory``.

Owns what is counted and how memory is read (psutil, summed over the whole process tree: the
server and every model worker). One :class:`Metrics` per application, on its own Prometheus
registry, so two apps in one test process never share numbers. It does not serve anything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MIB = 2**20

#: Per-stage latency buckets in seconds: from sub-millisecond decode to a slow first load.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    role: str
    pid: int
    rss_mb: float


@dataclass(frozen=True, slots=True)
class MemorySnapshot:
    rss_mb: float
    processes: tuple[ProcessMemory, ...]
    total_mb: float
    available_mb: float
    percent: float


def memory_snapshot(roles: Iterable[tuple[str, int]]) -> MemorySnapshot:
    """RSS of each (role, pid), their sum, and the machine's memory.

    A process that has just exited is skipped rather than failing the snapshot.
    """
    processes = []
    for role, pid in roles:
        try:
            rss = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
        processes.append(ProcessMemory(role=role, pid=pid, rss_mb=round(rss / MIB, 1)))
    system = psutil.virtual_memory()
    return MemorySnapshot(
        rss_mb=round(sum(p.rss_mb for p in processes), 1),
        processes=tuple(processes),
        total_mb=round(system.total / MIB, 1),
        available_mb=round(system.available / MIB, 1),
        percent=float(system.percent),
    )


class _RssCollector(Collector):
    """Reads RSS per role at scrape time, so the number is never stale."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "signwire_process_rss_bytes", "Resident set size of each server process", labels=["role", "pid"]
        )
        snapshot = self._metrics.memory()
        for process in snapshot.processes:
            family.add_metric([process.role, str(process.pid)], process.rss_mb * MIB)
        yield family
        total = GaugeMetricFamily("signwire_rss_bytes", "Resident set size summed over the process tree")
        total.add_metric([], snapshot.rss_mb * MIB)
        yield total


#: Returns the (role, pid) of every process of the server.
ProcessRoles = Callable[[], Iterable[tuple[str, int]]]


def _server_only() -> list[tuple[str, int]]:
    return [("server", os.getpid())]


class Metrics:
    """Everything ``/metrics`` exposes, on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.started_at = time.monotonic()
        #: Which processes make up the server; the app replaces it once the model pool exists.
        self.process_roles: ProcessRoles = _server_only
        self.frames = Counter("signwire_frames", "Frames answered with a result", ["transport"], registry=self.registry)
        self.errors = Counter(
            "signwire_errors", "Errors answered, by contract code", ["transport", "code"], registry=self.registry
        )
        self.dropped = Counter(
            "signwire_dropped_frames", "Frames skipped because a newer one arrived", registry=self.registry
        )
        self.latency = Histogram(
            "signwire_stage_seconds",
            "Time per stage: decode and inference in the worker, total in the server",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.restarts = Counter(
            "signwire_worker_restarts", "Model worker replacements, by reason", ["reason"], registry=self.registry
        )
        self.connections = Gauge("signwire_websocket_connections", "Open WebSocket connections", registry=self.registry)
        self.in_flight = Gauge(
            "signwire_frames_in_flight", "Frames handed to the model and not yet answered", registry=self.registry
        )
        self.registry.register(_RssCollector(self))
        self.frames_processed = 0

    def memory(self) -> MemorySnapshot:
        """RSS of every process of the server, read now."""
        return memory_snapshot(self.process_roles())

    def observe_frame(self, transport: str, decode_ms: float, inference_ms: float, total_ms: float) -> None:
        self.frames_processed += 1
        self.frames.labels(transport).inc()
        self.latency.labels("decode").observe(decode_ms / 1e3)
        self.latency.labels("inference").observe(inference_ms / 1e3)
        self.latency.labels("total").observe(total_ms / 1e3)

    def observe_error(self, transport: str, code: str) -> None:
        self.errors.labels(transport, code).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at
