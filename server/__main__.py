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
from aiohttp.http_exceptions import HttpProcessingError

from server.app import create_app
from server.config import load_config
from server.errors import ConfigError

log = logging.getLogger("server")


class WithoutRequestBytes(logging.Filter):
    """Keep what a client sent out of the log when aiohttp refuses a malformed request.

    aiohttp logs such a refusal with a traceback whose message quotes the offending bytes (a
    mis-framed body is image bytes); one line naming the error and the peer is enough.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "refused a malformed HTTP request from %s: %s (%d)"
            record.args = (
                record.args[0] if isinstance(record.args, tuple) and record.args else "?",
                type(exc).__name__,
                exc.code,
            )
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


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
    logging.getLogger("aiohttp.server").addFilter(WithoutRequestBytes())
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
