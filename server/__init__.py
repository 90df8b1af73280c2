"""signwire: a real-time hand-landmark and sign-recognition server.

``python -m server`` starts it. The package is laid out so that a bug's room is found from
``ls server/``: pure modules (``frames``, ``landmarks``, ``messages``, ``errors``, ``config``,
``signs/``) compute; ``model/`` owns the worker process that runs MediaPipe; ``transport/``
moves bytes between clients and the rest; ``app.py`` wires them together.
"""

import os as _os

# Every numpy call in signwire is small (one frame's landmarks, one small MLP, one crop's
# geometry). OpenBLAS would still hand them to helper threads, which spin while they wait and
# then compete with the model workers for the cores: measured with `make bench`, the server
# process spent 110 ms of CPU per answer at one client x 5 fps. OpenBLAS reads this once, when
# numpy is first imported, which is after this package's __init__ in the server and the workers.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
