"""A server-wide bound on frames held in memory while they wait for the model.

Every frame between its arrival and its answer holds a slot and its byte count here; when the
bound is reached the frame is answered ``busy`` instead of queued, so no buffer grows with what
clients send. Pure bookkeeping (no awaiting): the transports take and give back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from server.errors import Busy


class FrameBudget:
    """Counts frames and bytes held.

    Args:
        max_bytes: total encoded bytes that may wait at once.
        max_frames: frames that may wait at once.
    """

    def __init__(self, max_bytes: int, max_frames: int) -> None:
        self.max_bytes = max_bytes
        self.max_frames = max_frames
        self.held_bytes = 0
        self.held_frames = 0

    def take(self, size: int) -> None:
        """Reserve room for one frame of ``size`` bytes.

        Raises:
            Busy: the server already holds as many frames or bytes as it may.
        """
        if self.held_frames + 1 > self.max_frames or self.held_bytes + size > self.max_bytes:
            raise Busy("the server is holding as many frames as it may; retry shortly", retry_after_s=1)
        self.held_frames += 1
        self.held_bytes += size

    def give_back(self, size: int) -> None:
        self.held_frames -= 1
        self.held_bytes -= size

    @contextmanager
    def holding(self, size: int) -> Iterator[None]:
        self.take(size)
        try:
            yield
        finally:
            self.give_back(size)
