"""The model worker and its supervisor.

``worker.py`` is the child process (decode + hand model, one frame at a time); ``pool.py`` is the
server-side supervisor that starts, feeds, restarts and recycles workers; ``protocol.py`` is the
framing between them; ``engine.py`` is the seam every hand engine implements; ``hands.py`` is the
MediaPipe engine; ``files.py`` finds the bundled model files without importing mediapipe.
Only the worker process ever imports mediapipe.
"""
