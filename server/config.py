"""Configuration: ``config.toml`` read once into frozen dataclasses, validated, then never re-read.

Owns the shape of every setting and its checks. It does not own what a setting means at run
time (the modules that take the values do). A few environment variables override the file for
deployment (``HOST``, ``PORT``, ``SIGNWIRE_TOKEN``); no other module reads the environment or the
file. An unknown key or a bad value raises :class:`~server.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import ConfigError
from server.signs.config import SignsConfig

#: The config file that ships beside the code; ``make run`` uses it.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.toml"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_connections: int = 64
    max_connections_per_ip: int = 32
    max_frames_per_s_per_ip: float = 60.0
    allowed_origins: tuple[str, ...] = ()
    allow_localhost_origins: bool = True
    allowed_hosts: tuple[str, ...] = ()
    token: str = ""
    ws_heartbeat_s: float = 20.0
    ws_idle_timeout_s: float = 120.0
    ws_send_timeout_s: float = 10.0
    http_idle_timeout_s: float = 15.0
    body_timeout_s: float = 30.0
    shutdown_grace_s: float = 5.0


@dataclass(frozen=True, slots=True)
class FramesConfig:
    max_bytes: int = 5 * 1024 * 1024
    multipart_overhead_bytes: int = 64 * 1024
    max_pixels: int = 16_000_000
    max_side_px: int = 8192
    fit_width_px: int = 640
    fit_height_px: int = 480
    max_pending_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ModelConfig:
    engine: str = "litert"
    complexity: str = "lite"
    max_hands: int = 2
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    workers: int = 2
    tracking_sessions: int = 64
    detect_interval_frames: int = 5
    threads: int = 1
    frame_timeout_s: float = 10.0
    start_timeout_s: float = 60.0
    recycle_rss_mb: int = 0
    recycle_after_frames: int = 0


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    limit_mb: int = 512


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    frames: FramesConfig = field(default_factory=FramesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    signs: SignsConfig = field(default_factory=SignsConfig)


#: Peak RSS in MB measured by ``make bench`` (results/bench_server.md, "Engines side by side"):
#: the server process, one MediaPipe graph worker by model size, and each tracking graph such a
#: worker adds (a graph per tracking session, never returned to the OS).
_SERVER_PEAK_MB = 60
_GRAPH_WORKER_PEAK_MB = {"lite": 173, "full": 197}
_GRAPH_SESSION_PEAK_MB = 78


def mediapipe_peak_mb(model: ModelConfig) -> int:
    """The whole tree's expected peak RSS with the graph engine, from measured costs."""
    worker = _GRAPH_WORKER_PEAK_MB[model.complexity]  # "lite" or "full": parse_config checks it first
    return _SERVER_PEAK_MB + model.workers * (worker + model.tracking_sessions * _GRAPH_SESSION_PEAK_MB)


_CHOICES: dict[str, tuple[str, ...]] = {
    "model.engine": ("mediapipe", "litert"),
    "model.complexity": ("lite", "full"),
}

_POSITIVE = {
    "server.max_connections",
    "server.max_connections_per_ip",
    "server.http_idle_timeout_s",
    "frames.max_bytes",
    "frames.max_pixels",
    "frames.max_side_px",
    "frames.fit_width_px",
    "frames.fit_height_px",
    "frames.max_pending_bytes",
    "model.max_hands",
    "model.workers",
    "model.detect_interval_frames",
    "model.threads",
    "model.frame_timeout_s",
    "model.start_timeout_s",
    "memory.limit_mb",
}


def _coerce(key: str, value: object, annotation: object) -> object:
    """Check one value against its dataclass annotation; ints are accepted for floats."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item,) = typing.get_args(annotation)[:1]
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise ConfigError(f"{key}: expected a list of {item.__name__}, got {value!r}")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{key}: unsupported type {annotation!r}")  # not used by any key
    expected = annotation if isinstance(annotation, type) else object
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{key}: expected {expected.__name__}, got {value!r}")
    return value


def _build(section: str, cls: type[Any], table: Mapping[str, object]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    values: dict[str, object] = {}
    for name, raw in table.items():
        key = f"{section}.{name}"
        value = _coerce(key, raw, hints[name])
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(f"{key}: expected one of {', '.join(_CHOICES[key])}, got {value!r}")
        if key in _POSITIVE and isinstance(value, (int, float)) and value <= 0:
            raise ConfigError(f"{key}: expected a positive number, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{key}: expected a number >= 0, got {value!r}")
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{section}: {exc}") from exc


def parse_config(data: Mapping[str, object], env: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed TOML document and apply environment overrides.

    Args:
        data: the TOML document as a mapping of tables.
        env: environment variables to honour (``HOST``, ``PORT``, ``SIGNWIRE_TOKEN``); none if omitted.

    Returns:
        The frozen configuration.

    Raises:
        ConfigError: an unknown table or key, or a value of the wrong type or range.
    """
    sections: dict[str, type[Any]] = {f.name: typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown table (known: {', '.join(sorted(sections))})")
    built: dict[str, Any] = {}
    for name, cls in sections.items():
        table = data.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{name}: expected a table, got {table!r}")
        built[name] = _build(name, cls, table)
    config = Config(**built)
    model = config.model
    if model.engine == "mediapipe" and (peak_mb := mediapipe_peak_mb(model)) > config.memory.limit_mb:
        raise ConfigError(
            f'model: with engine = "mediapipe", {model.workers} worker(s) of {model.complexity} models with '
            f"{model.tracking_sessions} tracking session(s) each would peak near {peak_mb} MB "
            f"(a graph worker ~{_GRAPH_WORKER_PEAK_MB[model.complexity]} MB, each tracking session "
            f"its own graph, ~{_GRAPH_SESSION_PEAK_MB} MB never returned), over memory.limit_mb = "
            f"{config.memory.limit_mb}: lower model.workers or model.tracking_sessions "
            f'(engine = "litert" tracks every session at no memory cost)'
        )
    env = env or {}
    server = config.server
    if "HOST" in env:
        server = dataclasses.replace(server, host=env["HOST"])
    if "PORT" in env:
        try:
            port = int(env["PORT"])
        except ValueError:
            raise ConfigError(f"PORT: expected an integer, got {env['PORT']!r}") from None
        if not 0 <= port <= 65535:
            raise ConfigError(f"PORT: expected 0-65535, got {port}")
        server = dataclasses.replace(server, port=port)
    if env.get("SIGNWIRE_TOKEN"):
        server = dataclasses.replace(server, token=env["SIGNWIRE_TOKEN"])
    return dataclasses.replace(config, server=server)


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file once.

    Args:
        path: the TOML file; ``SIGNWIRE_CONFIG`` from ``env`` or :data:`DEFAULT_CONFIG_PATH` if omitted.
        env: the environment to take overrides from; ``os.environ`` if omitted.

    Raises:
        ConfigError: the file is missing, not TOML, or has a bad key or value.
    """
    env = os.environ if env is None else env
    if path is None:
        path = Path(env["SIGNWIRE_CONFIG"]) if env.get("SIGNWIRE_CONFIG") else DEFAULT_CONFIG_PATH
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, env)
