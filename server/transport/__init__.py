"""The thin I/O layer: HTTP handlers, the WebSocket handler, access rules and shared app keys.

Handlers parse, call one thing, map errors, send. Pure work (decoding, JSON shapes, signs)
lives elsewhere; the model lives in its worker process behind ``server.model.pool``.
"""
