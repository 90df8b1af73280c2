"""Sign recognition: hand landmarks in, a recognised sign (or ``None``) and text out.

The seam the server core calls: one :class:`Recognizer` per process (``open_recognizer``,
closed by the app), one :class:`SignSession` per connection or HTTP session id. Pure: numpy
and the stdlib only, no asyncio, aiohttp or mediapipe; importing this package loads no model.

Modules: ``features`` (geometry), ``classifier`` (letters MLP, taught nearest example),
``stability`` (smoothing, ``stable``, text), ``store`` (SQLite, keypoint CSV), ``recognizer``
(the decision and the sessions), ``config`` (``[signs]``), ``train`` (offline training).
"""

from __future__ import annotations

from server.signs.config import SignsConfig
from server.signs.recognizer import Recognizer, SignSession, check_label, open_recognizer

__all__ = ["Recognizer", "SignSession", "SignsConfig", "check_label", "open_recognizer"]
