"""Sign recognition: hand landmarks in, a recognised sign (or ``None``) and text out.

Pure: numpy and the stdlib only, no asyncio, aiohttp or mediapipe.
"""
