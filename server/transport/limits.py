"""Per-client limits: WebSocket connections held and frames sent per second, by client IP.

Pure bookkeeping on a clock (no awaiting), like ``budget.py``: the transports ask before they
take a connection or a frame and are told ``Busy`` (with how long to wait) when a client is over
its share. Memory is bounded: at most ``max_tracked_ips`` rate buckets are kept, least recently
used first out (a forgotten client simply starts again with a full burst), and a connection count
is forgotten when it drops to zero.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from server.errors import Busy

#: Rate buckets kept at once; beyond it the least recently seen client is forgotten.
MAX_TRACKED_IPS = 4096


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ClientLimits:
    """Connections and frame rate per client IP.

    Args:
        max_connections_per_ip: WebSocket connections one IP may hold open.
        frames_per_s: sustained frames per second per IP; a burst of one second's worth (at
            least one frame) is allowed. 0 disables the rate limit.
        clock: seconds, monotonic (tests pass their own).
        max_tracked_ips: rate buckets kept at once.
    """

    def __init__(
        self,
        max_connections_per_ip: int,
        frames_per_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_tracked_ips: int = MAX_TRACKED_IPS,
    ) -> None:
        self.max_connections_per_ip = max_connections_per_ip
        self.frames_per_s = frames_per_s
        self.burst = max(1.0, frames_per_s)
        self._clock = clock
        self._max_tracked_ips = max_tracked_ips
        self._connections: dict[str, int] = {}
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def connections(self, ip: str) -> int:
        return self._connections.get(ip, 0)

    def open_connection(self, ip: str) -> None:
        """Count one more connection from ``ip``.

        Raises:
            Busy: ``ip`` already holds as many connections as it may.
        """
        held = self._connections.get(ip, 0)
        if held >= self.max_connections_per_ip:
            raise Busy(
                f"this client already has {held} connections open; the limit is {self.max_connections_per_ip}",
                retry_after_s=5,
            )
        self._connections[ip] = held + 1

    def close_connection(self, ip: str) -> None:
        held = self._connections.get(ip, 0) - 1
        if held > 0:
            self._connections[ip] = held
        else:
            self._connections.pop(ip, None)

    def take_frame(self, ip: str) -> None:
        """Spend one frame of ``ip``'s rate.

        Raises:
            Busy: ``ip`` has sent more frames than its rate allows; ``retry_after_s`` says when
                the next one will be taken.
        """
        if self.frames_per_s <= 0:
            return
        now = self._clock()
        bucket = self._buckets.pop(ip, None)
        if bucket is None:
            bucket = _Bucket(tokens=self.burst, updated=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.frames_per_s)
            bucket.updated = now
        self._buckets[ip] = bucket  # most recently seen last
        while len(self._buckets) > self._max_tracked_ips:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            wait_s = (1.0 - bucket.tokens) / self.frames_per_s
            raise Busy(
                f"this client is sending more than {self.frames_per_s:g} frames per second",
                retry_after_s=math.ceil(wait_s),
            )
        bucket.tokens -= 1.0

    @property
    def tracked_ips(self) -> int:
        return len(self._buckets)
