"""config.py: the shipped file loads, every bad key or value names itself, env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import DEFAULT_CONFIG_PATH, load_config, parse_config
from server.errors import ConfigError


def test_shipped_config_loads_with_the_contract_limits() -> None:
    config = load_config(DEFAULT_CONFIG_PATH, env={})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8000
    assert config.frames.max_bytes == 5 * 1024 * 1024
    assert config.frames.max_pixels == 16_000_000
    assert config.frames.max_side_px == 8192
    assert (config.frames.fit_width_px, config.frames.fit_height_px) == (640, 480)
    assert config.memory.limit_mb == 512


def test_code_defaults_are_the_shipped_file() -> None:
    """A key left out of a config file means what config.toml says, never something else."""
    assert load_config(DEFAULT_CONFIG_PATH, env={}) == parse_config({})


def test_every_key_in_the_shipped_file_is_commented() -> None:
    lines = DEFAULT_CONFIG_PATH.read_text().splitlines()
    documented_before = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            documented_before = True
        elif stripped.startswith("["):
            documented_before = False
        elif "=" in stripped:
            key = stripped.split("=")[0].strip()
            if key not in (
                "host",
                "port",
                "min_detection_confidence",
                "min_tracking_confidence",
                "max_side_px",
                "fit_height_px",
            ):
                assert documented_before, f"config.toml key {key!r} has no comment above it"
        elif not stripped:
            documented_before = False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sever": {}}, "sever: unknown table"),
        ({"server": {"prot": 1}}, "server.prot: unknown key"),
        ({"server": {"port": "80"}}, "server.port: expected int"),
        ({"frames": {"max_bytes": 0}}, "frames.max_bytes: expected a positive number"),
        ({"frames": {"max_bytes": True}}, "frames.max_bytes: expected an integer"),
        ({"model": {"complexity": "huge"}}, "model.complexity: expected one of lite, full"),
        ({"model": {"workers": 0}}, "model.workers: expected a positive number"),
        ({"server": {"allowed_origins": "http://a"}}, "server.allowed_origins: expected a list of str"),
        ({"model": {"tracking_sessions": -1}}, "model.tracking_sessions: expected a number >= 0"),
    ],
)
def test_bad_values_name_their_key(data: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


@pytest.mark.parametrize(
    ("model", "limit_mb"),
    [
        ({"tracking_sessions": 64}, 512),  # the shipped litert settings, engine switched
        ({"workers": 1, "tracking_sessions": 4}, 512),  # measured: the tree peaked at 548 MB
        ({"workers": 2, "tracking_sessions": 1}, 512),
        ({"workers": 2, "complexity": "full", "tracking_sessions": 1}, 512),
        ({"workers": 1, "tracking_sessions": 0}, 200),
    ],
)
def test_mediapipe_settings_that_would_outgrow_the_memory_limit_are_refused(
    model: dict[str, object], limit_mb: int
) -> None:
    with pytest.raises(ConfigError, match=r'model: with engine = "mediapipe".*over memory.limit_mb'):
        parse_config({"model": {"engine": "mediapipe", **model}, "memory": {"limit_mb": limit_mb}})


@pytest.mark.parametrize(
    ("model", "limit_mb"),
    [
        ({"workers": 2, "tracking_sessions": 0}, 512),
        ({"workers": 1, "tracking_sessions": 3}, 512),
        ({"workers": 1, "complexity": "full", "tracking_sessions": 2}, 512),
        ({"workers": 1, "tracking_sessions": 4}, 1024),  # a bigger box may track more
    ],
)
def test_mediapipe_settings_within_the_memory_limit_are_taken(model: dict[str, object], limit_mb: int) -> None:
    parse_config({"model": {"engine": "mediapipe", **model}, "memory": {"limit_mb": limit_mb}})


def test_litert_tracking_costs_no_graphs() -> None:
    assert parse_config({"model": {"engine": "litert", "tracking_sessions": 64}}).model.tracking_sessions == 64


def test_environment_overrides_host_port_and_token() -> None:
    config = parse_config({}, env={"HOST": "0.0.0.0", "PORT": "9001", "SIGNWIRE_TOKEN": "s3cret"})
    assert (config.server.host, config.server.port, config.server.token) == ("0.0.0.0", 9001, "s3cret")


@pytest.mark.parametrize("port", ["eighty", "70000"])
def test_bad_port_from_environment_is_refused(port: str) -> None:
    with pytest.raises(ConfigError, match="PORT"):
        parse_config({}, env={"PORT": port})


def test_missing_and_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, env={})


def test_config_is_frozen() -> None:
    config = parse_config({})
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]
