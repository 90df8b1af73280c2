"""Property-based fuzzing of frame decoding: whatever the bytes, only ``SignwireError`` comes out.

``server.frames.decode_frame`` runs on bytes any client can send. Hypothesis feeds it random
bytes, random bytes behind each format's magic number, real small images with bytes flipped,
cut or inserted, and PNG/JPEG/WebP headers declaring arbitrary sizes, and checks that every call
either returns 8-bit RGB within the fit box or raises a ``SignwireError`` subclass — never
another exception — and that the process does not grow while doing it. This is the short run of
``make test``; ``python -m tests.bench.bench_fuzz`` runs the same properties far longer.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from functools import cache

import numpy as np
import psutil
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from server.errors import SignwireError
from server.frames import DecodedFrame, FrameLimits, decode_frame

#: Smaller than the contract's limits so the legal extremes decode quickly here; the rules are
#: the same code paths.
LIMITS = FrameLimits(max_pixels=1_000_000, max_side_px=2048, fit_width_px=640, fit_height_px=480)
#: Growth of this process allowed over one fuzz run (decoders keep small caches).
RSS_GROWTH_BUDGET_MB = 64


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


@cache
def seeds() -> tuple[bytes, ...]:
    """Small, valid images of every format and mode the decoder has a path for."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    rgb = Image.fromarray(pixels, "RGB")
    exif = rgb.getexif()
    exif[0x0112] = 6
    return (
        _encode(rgb, "JPEG", quality=80),
        _encode(rgb, "JPEG", progressive=True),
        _encode(rgb, "JPEG", exif=exif.tobytes()),
        _encode(rgb.convert("L"), "JPEG"),
        _encode(rgb.convert("CMYK"), "JPEG"),
        _encode(rgb, "PNG"),
        _encode(rgb.convert("RGBA"), "PNG"),
        _encode(rgb.convert("P"), "PNG", transparency=3),
        _encode(rgb.convert("1"), "PNG"),
        _encode(Image.fromarray(pixels[:, :, 0].astype(np.uint16) * 257), "PNG"),
        _encode(rgb, "WEBP"),
        _encode(rgb, "WEBP", lossless=True),
        _encode(rgb.convert("RGBA"), "WEBP"),
    )


MAGICS = (
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe0",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"RIFF\xff\xff\xff\xffWEBPVP8L",
)


def png_with_header(*, width: int, height: int, bit_depth: int, colour: int, interlace: int, tail: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, interlace)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(tail)) + chunk(b"IEND", b"")


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(0, 8))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "overwrite-size"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:  # a 16- or 32-bit big/little-endian number where a size may live
            size = draw(st.integers(0, 2**32 - 1))
            packed = draw(st.sampled_from([">H", "<H", ">I", "<I"]))
            data[at : at + struct.calcsize(packed)] = struct.pack(packed, size % (1 << (8 * struct.calcsize(packed))))
    return bytes(data)


FRAMES = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda magic, tail: magic + tail, st.sampled_from(MAGICS), st.binary(max_size=2048)),
    mutated_seed(),
    st.builds(
        png_with_header,
        width=st.integers(0, 2**31 - 1) | st.integers(0, 4096),
        height=st.integers(0, 2**31 - 1) | st.integers(0, 4096),
        bit_depth=st.sampled_from([1, 2, 4, 8, 16, 3, 0, 255]),
        colour=st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
        interlace=st.sampled_from([0, 1, 2]),
        tail=st.binary(max_size=512),
    ),
)


def check_decode(data: bytes, limits: FrameLimits = LIMITS) -> str:
    """Decode once; return the outcome's name. Anything but a result or a SignwireError fails.

    Warnings (Pillow's "possibly corrupt EXIF", for instance) are not failures here: the worker
    logs nothing for them and they say nothing about what the client gets back.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            frame: DecodedFrame | SignwireError = decode_frame(data, limits)
        except SignwireError as error:
            frame = error
    if isinstance(frame, SignwireError):
        assert frame.code in ("bad_image", "image_too_large", "unsupported_media_type"), frame.code
        assert str(frame)
        return frame.code
    height, width, channels = frame.rgb.shape
    assert (channels, frame.rgb.dtype) == (3, np.uint8)
    assert 1 <= width <= limits.fit_width_px
    assert 1 <= height <= limits.fit_height_px
    assert frame.source_width * frame.source_height <= limits.max_pixels
    return "result"


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss / 2**20)


def test_every_seed_decodes() -> None:
    assert all(check_decode(seed) == "result" for seed in seeds())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRAMES)
# Found by this test: a 1x1 1-bit PNG cut inside its IDAT made Pillow raise TypeError (was a 500).
@example(
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x01\x00\x00\x00\x01@i\xc9\xb2"
    b"\x00\x00\x00\x08IDAT"
)
def test_decode_frame_raises_only_signwire_errors(data: bytes) -> None:
    check_decode(data)


def test_fuzzing_does_not_grow_the_process() -> None:
    # Warm the decoders' own one-time allocations, then fuzz and compare.
    for seed in seeds():
        check_decode(seed)
    before = rss_mb()

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(FRAMES)
    def run(data: bytes) -> None:
        check_decode(data)

    run()
    assert rss_mb() - before < RSS_GROWTH_BUDGET_MB
