"""The thin I/O layer: HTTP handlers, the WebSocket handler, access rules, shared app keys, and
the JSON answer to requests that are not valid HTTP (``framing``).

Handlers parse, call one thing, map errors, send. Pure work (decoding, JSON shapes, signs)
lives elsewhere; the model lives in its worker process behind ``server.model.pool``.
"""
