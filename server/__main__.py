"""``python -m server [--config PATH]``: load the configuration, set up logging, serve.

Environment: ``HOST``, ``PORT`` and ``SIGNWIRE_TOKEN`` override ``config.toml``;
``SIGNWIRE_CONFIG`` names another config file; ``SIGNWIRE_LOG_LEVEL`` sets the log level.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from server.app import create_app
from server.config import load_config
from server.errors import ConfigError

log = logging.getLogger("server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="config file (default: config.toml)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SIGNWIRE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiohttp logs every request at INFO; per-request lines are DEBUG material here.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"signwire: configuration error: {exc}", file=sys.stderr)
        return 2
    server = config.server
    model = config.model
    log.info(
        "signwire on http://%s:%d/  model=%s/%s workers=%d frame limit=%d bytes memory limit=%d MB token=%s",
        server.host,
        server.port,
        model.engine,
        model.complexity,
        model.workers,
        config.frames.max_bytes,
        config.memory.limit_mb,
        "set" if server.token else "none",
    )
    web.run_app(
        create_app(config),
        host=server.host,
        port=server.port,
        shutdown_timeout=server.shutdown_grace_s,
        # Also the bound on a connection that trickles its request headers (slowloris): aiohttp
        # closes a connection that has not completed a request this long after it opened.
        keepalive_timeout=server.http_idle_timeout_s,
        # aiohttp calls this once every socket is bound: the moment clients can connect.
        print=lambda _banner: log.info("signwire listening on http://%s:%d/", server.host, server.port),
        access_log=None,
    )
    log.info("signwire stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
