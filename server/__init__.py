"""signwire: a real-time hand-landmark and sign-recognition server.

``python -m server`` starts it. The package is laid out so that a bug's room is found from
``ls server/``: pure modules (``frames``, ``landmarks``, ``messages``, ``errors``, ``config``,
``signs/``) compute; ``model/`` owns the worker process that runs MediaPipe; ``transport/``
moves bytes between clients and the rest; ``app.py`` wires them together.
"""
