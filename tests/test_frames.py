"""frames.py: sniffing, header limits, decoding every colour mode, EXIF orientation, the fit."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from server.errors import BadImage, ImageTooLarge, UnsupportedMediaType
from server.frames import FrameLimits, ImageFormat, apply_orientation, decode_frame, fit_size, sniff_format


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def quadrants(width: int = 64, height: int = 32) -> Image.Image:
    """An asymmetric image: red top-left, green top-right, blue bottom-left, white bottom-right."""
    rgb = np.zeros((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    rgb[:h2, :w2] = (255, 0, 0)
    rgb[:h2, w2:] = (0, 255, 0)
    rgb[h2:, :w2] = (0, 0, 255)
    rgb[h2:, w2:] = (255, 255, 255)
    return Image.fromarray(rgb)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG header declaring any size, with whatever (little) pixel data follows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\xff\xd8\xff\xe0rest", ImageFormat.JPEG),
        (b"\x89PNG\r\n\x1a\nrest", ImageFormat.PNG),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", ImageFormat.WEBP),
    ],
)
def test_sniff_names_the_format_from_the_bytes(data: bytes, fmt: ImageFormat) -> None:
    assert sniff_format(data) is fmt


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00",
        b"BM\x00\x00",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"<html></html>",
        b"\x00" * 16,
    ],
)
def test_sniff_refuses_other_formats(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType):
        sniff_format(data)


def test_empty_frame_is_a_bad_image() -> None:
    with pytest.raises(BadImage, match="empty"):
        decode_frame(b"")


@pytest.mark.parametrize(
    ("size", "fitted"),
    [
        ((640, 480), (640, 480)),
        ((1280, 720), (640, 360)),
        ((1920, 1080), (640, 360)),
        ((540, 720), (360, 480)),
        ((100, 100), (100, 100)),
        ((1, 1), (1, 1)),
        ((8000, 2), (640, 1)),
        ((2, 8000), (1, 480)),
        ((4000, 3000), (640, 480)),
        ((641, 480), (640, 479)),
    ],
)
def test_fit_size_follows_the_contract(size: tuple[int, int], fitted: tuple[int, int]) -> None:
    assert fit_size(*size) == fitted


def test_jpeg_is_fitted_within_640x480_keeping_aspect() -> None:
    data = encode(quadrants(1920, 1080), "JPEG", quality=90)
    frame = decode_frame(data)
    assert frame.rgb.shape == (360, 640, 3)
    assert frame.rgb.dtype == np.uint8
    assert (frame.source_width, frame.source_height) == (1920, 1080)


def test_small_frames_are_never_enlarged() -> None:
    frame = decode_frame(encode(quadrants(100, 60), "PNG"))
    assert frame.rgb.shape == (60, 100, 3)


def test_large_jpeg_decodes_reduced_to_the_exact_contract_size() -> None:
    # 4096x3072 decodes at 1/4 scale by the DCT, then is resized to exactly 640x480.
    frame = decode_frame(encode(quadrants(4096, 3072), "JPEG", quality=80))
    assert frame.rgb.shape == (480, 640, 3)
    # Colours survive: top-left quadrant red.
    assert tuple(frame.rgb[100, 100]) == pytest.approx((255, 0, 0), abs=12)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_matches_pillow(orientation: int, fmt: str) -> None:
    image = quadrants(64, 32)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(image, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    frame = decode_frame(data)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert frame.rgb.shape == expected.shape
    # Compare quadrant centres (JPEG blurs the edges).
    h, w = expected.shape[:2]
    for y in (h // 4, 3 * h // 4):
        for x in (w // 4, 3 * w // 4):
            assert np.abs(frame.rgb[y, x].astype(int) - expected[y, x].astype(int)).max() <= 16


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow_exactly(orientation: int) -> None:
    rgb = np.asarray(quadrants(6, 4)).copy()
    rgb[0, 0] = (1, 2, 3)  # a marker pixel
    ops = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }
    image = Image.fromarray(rgb)
    expected = np.asarray(image.transpose(ops[orientation]) if orientation in ops else image)
    assert np.array_equal(apply_orientation(rgb, orientation), expected)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    grey16 = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    ok, png = cv2.imencode(".png", grey16)
    assert ok
    frame = decode_frame(png.tobytes())
    assert frame.rgb.shape == (1, 4, 3)
    assert frame.rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert np.array_equal(frame.rgb[..., 0], frame.rgb[..., 1])


def test_sixteen_bit_colour_becomes_8_bit_rgb() -> None:
    bgr16 = np.zeros((2, 2, 3), np.uint16)
    bgr16[..., 2] = 65535  # red, in OpenCV's BGR order
    ok, png = cv2.imencode(".png", bgr16)
    assert ok
    frame = decode_frame(png.tobytes())
    assert frame.rgb[0, 0].tolist() == [255, 0, 0]


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    frame = decode_frame(encode(cmyk, "JPEG", quality=95))
    assert frame.rgb.shape == (32, 32, 3)
    r, g, b = frame.rgb[16, 16].tolist()
    assert r > 200
    assert g < 60
    assert b < 60


def test_transparent_pixels_become_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red under the transparency
    rgba[:, :2, 3] = 255  # left half opaque red, right half fully transparent
    frame = decode_frame(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert frame.rgb[0, 0].tolist() == [255, 0, 0]
    assert frame.rgb[0, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize("mode", ["L", "P", "LA", "1"])
def test_other_modes_become_rgb(mode: str) -> None:
    image = quadrants(16, 16).convert(mode)
    frame = decode_frame(encode(image, "PNG"))
    assert frame.rgb.shape == (16, 16, 3)


def test_grey_jpeg_becomes_three_equal_channels() -> None:
    frame = decode_frame(encode(quadrants(32, 32).convert("L"), "JPEG"))
    assert frame.rgb.shape == (32, 32, 3)
    assert np.array_equal(frame.rgb[..., 0], frame.rgb[..., 2])


def test_webp_decodes() -> None:
    frame = decode_frame(encode(quadrants(64, 32), "WEBP", lossless=True))
    assert frame.rgb.shape == (32, 64, 3)
    assert frame.rgb[8, 8].tolist() == [255, 0, 0]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_images_are_bad(fmt: str) -> None:
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)), fmt)
    with pytest.raises(BadImage):
        decode_frame(data[: len(data) // 2])


def test_header_only_jpeg_is_bad() -> None:
    data = encode(quadrants(), "JPEG")
    with pytest.raises(BadImage):
        decode_frame(data[:40])


def test_zero_sized_png_is_bad() -> None:
    with pytest.raises(BadImage):
        decode_frame(png_declaring(0, 10))


@pytest.mark.parametrize(("width", "height"), [(10000, 10000), (8193, 10), (10, 8193), (5000, 3201)])
def test_oversized_headers_are_refused_before_decoding(width: int, height: int) -> None:
    # The IDAT holds a few bytes only: a decode would fail differently, so this proves the
    # refusal comes from the header check.
    with pytest.raises(ImageTooLarge, match=f"{width}x{height}"):
        decode_frame(png_declaring(width, height, zlib.compress(b"\x00" * 64)))


def test_limits_are_configurable() -> None:
    data = encode(quadrants(64, 32), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_frame(data, FrameLimits(max_side_px=63))
    with pytest.raises(ImageTooLarge):
        decode_frame(data, FrameLimits(max_pixels=64 * 32 - 1))
    assert decode_frame(data, FrameLimits(fit_width_px=32, fit_height_px=32)).rgb.shape == (16, 32, 3)


def test_legal_16mp_frame_at_the_limit_decodes() -> None:
    data = encode(quadrants(4000, 4000), "JPEG", quality=50)
    assert decode_frame(data).rgb.shape == (480, 480, 3)


def test_random_bytes_after_a_jpeg_signature_are_bad() -> None:
    data = b"\xff\xd8\xff" + np.random.default_rng(2).bytes(5000)
    with pytest.raises(BadImage):
        decode_frame(data)
