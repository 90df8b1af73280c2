"""Frames: turn the bytes a client sent into the RGB pixels the hand model sees.

Owns the image rules of the wire contract: format sniffed from the bytes (JPEG, PNG, WebP),
dimensions checked from the header *before* any pixel is decoded (so a decompression bomb costs
nothing), EXIF orientation, conversion of every colour mode to 8-bit RGB, and the fit within
640x480. Pure: bytes in, ``numpy`` array out, or an error from ``server.errors``. It does not
own transport limits on the encoded size (the transports enforce those while reading) and runs
only inside the model worker, so decoded pixels never live in the server process.

Pillow does both the header parse (lazy: ``Image.open`` reads headers only) and the decode, so
one library decides orientation and colour for every format. JPEGs are decoded reduced (DCT
scaling via ``Image.draft``) when they are much larger than the target, which bounds the memory
of a legal 16 MP frame. cv2 only resizes.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from server.errors import BadImage, ImageTooLarge, UnsupportedMediaType


class ImageFormat(StrEnum):
    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """Limits on a decoded frame and the size the model sees.

    Attributes:
        max_pixels: width x height allowed, read from the header.
        max_side_px: the longest side allowed, read from the header.
        fit_width_px, fit_height_px: the box the frame is shrunk to fit (never enlarged).
    """

    max_pixels: int = 16_000_000
    max_side_px: int = 8192
    fit_width_px: int = 640
    fit_height_px: int = 480


#: What Pillow's parsers and decoders raise on malformed input. Its documented ones (OSError,
#: ValueError, SyntaxError, EOFError) are not all: property-based fuzzing (tests/test_fuzz_frames.py)
#: found a truncated PNG raising TypeError from inside Pillow, which would have been a 500.
#: None of these means anything but "these bytes are not a decodable image".
_DECODER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, struct.error)

# EXIF orientations 5-8 rotate by 90 degrees, so the displayed width is the stored height.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112


def sniff_format(data: bytes) -> ImageFormat:
    """Name the image format from the first bytes, never from a name or a header.

    Raises:
        BadImage: ``data`` is empty.
        UnsupportedMediaType: the bytes are not JPEG, PNG or WebP.
    """
    if not data:
        raise BadImage("the frame is empty (0 bytes)")
    if data[:3] == b"\xff\xd8\xff":
        return ImageFormat.JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ImageFormat.PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    raise UnsupportedMediaType(f"the frame is not JPEG, PNG or WebP (it starts with {data[:8].hex()})")


def fit_size(width: int, height: int, box_width: int = 640, box_height: int = 480) -> tuple[int, int]:
    """The size a ``width`` x ``height`` frame takes to fit the box, keeping its aspect ratio.

    Follows the contract: ``s = min(1, box_w / w, box_h / h)``, then
    ``max(1, round(w * s))`` x ``max(1, round(h * s))``. Never enlarges.
    """
    scale = min(1.0, box_width / width, box_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open_checked(data: bytes, fmt: ImageFormat, limits: FrameLimits) -> Image.Image:
    """Open lazily (headers only) and check the declared size before any pixel is decoded."""
    with warnings.catch_warnings():
        # Pillow warns about (and past twice its own limit refuses) large canvases; our own,
        # lower limit below is the one that decides, so its warning is noise here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt.value])
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"the image declares too many pixels: {exc}") from None
        except _DECODER_ERRORS as exc:
            raise BadImage(f"the {fmt.value} header could not be read: {exc}") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise BadImage(f"the image is zero-sized ({width}x{height})")
    if max(width, height) > limits.max_side_px or width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} ({width * height} pixels); the limits are "
            f"{limits.max_side_px} px a side and {limits.max_pixels} pixels"
        )
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit RGB.

    16-bit greys are scaled (Pillow's own I;16 -> L conversion clips at 255 instead), and
    transparent pixels are composited over white rather than showing whatever colour the
    encoder left under them.
    """
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        scaled = (
            np.asarray(image, dtype=np.uint32) >> 8
            if mode != "I"
            else (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8)
        )
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    elif mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), mode="L")
    if mode in ("P", "PA") and ("transparency" in image.info or mode == "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """A frame ready for the model.

    Attributes:
        rgb: HxWx3 uint8, C-contiguous, already fitted within the box.
        source_width, source_height: the image as displayed (after EXIF orientation).
        fmt: the sniffed format.
    """

    rgb: npt.NDArray[np.uint8]
    source_width: int
    source_height: int
    fmt: ImageFormat


def _jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG has its end-of-image marker after its last scan.

    ``cv2.imdecode`` decodes a truncated JPEG with only a warning (libjpeg pads the missing
    scan with grey), so completeness is checked here. 0xFFDA (start of scan) and 0xFFD9 (end of
    image) cannot occur inside entropy-coded data, where 0xFF is always stuffed.
    """
    last_scan = data.rfind(b"\xff\xda")
    return last_scan != -1 and data.find(b"\xff\xd9", last_scan) != -1


def _reduction(stored: tuple[int, int], target: tuple[int, int]) -> int:
    """The largest JPEG DCT scale 1, 2, 4 or 8 that still decodes to at least ``target``."""
    for factor in (8, 4, 2):
        if -(-stored[0] // factor) >= target[0] and -(-stored[1] // factor) >= target[1]:
            return factor
    return 1


_CV2_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def _decode_plain_jpeg(
    data: bytes, stored_size: tuple[int, int], stored_target: tuple[int, int]
) -> npt.NDArray[np.uint8]:
    """Decode an 8-bit YCbCr or grey JPEG with cv2 (about 4x faster than Pillow here)."""
    if not _jpeg_is_complete(data):
        raise BadImage("the JPEG is truncated (no end-of-image marker after its last scan)")
    # Orientation is applied by apply_orientation from Pillow's reading of the EXIF block,
    # so that every format and both decoders agree on it.
    flags = _CV2_REDUCED_FLAGS[_reduction(stored_size, stored_target)]
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.size == 0:
        raise BadImage("the JPEG could not be decoded")
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _decode_with_pillow(image: Image.Image, fmt: ImageFormat, stored_target: tuple[int, int]) -> npt.NDArray[np.uint8]:
    if fmt is ImageFormat.JPEG:
        # Let libjpeg scale by 1/2, 1/4 or 1/8 while decoding, to no less than the target.
        image.draft("RGB", stored_target)
    image.load()
    return np.asarray(_to_rgb(image))


def apply_orientation(rgb: npt.NDArray[np.uint8], orientation: int) -> npt.NDArray[np.uint8]:
    """Turn stored pixels the way EXIF ``orientation`` (1-8) says a camera meant them.

    Same result as Pillow's ``ImageOps.exif_transpose``; unknown values leave pixels as stored.
    """
    if orientation == 2:
        return rgb[:, ::-1]
    if orientation == 3:
        return rgb[::-1, ::-1]
    if orientation == 4:
        return rgb[::-1]
    if orientation == 5:
        return rgb.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(rgb, k=-1)
    if orientation == 7:
        return np.rot90(rgb, k=-1)[::-1]
    if orientation == 8:
        return np.rot90(rgb, k=1)
    return rgb


def decode_frame(data: bytes, limits: FrameLimits | None = None) -> DecodedFrame:
    """Decode one encoded frame into fitted 8-bit RGB pixels.

    Args:
        data: the encoded image, at most the transport's size limit.
        limits: pixel limits and the box to fit; the contract's defaults if omitted.

    Returns:
        The fitted RGB frame and what it was.

    Raises:
        BadImage: empty, broken, truncated or zero-sized.
        UnsupportedMediaType: not JPEG, PNG or WebP.
        ImageTooLarge: the header declares more than the limits allow.
    """
    limits = limits or FrameLimits()
    fmt = sniff_format(data)
    image = _open_checked(data, fmt, limits)
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except _DECODER_ERRORS:
        orientation = 1  # an unreadable EXIF block is not a reason to refuse the pixels
    stored_w, stored_h = image.size
    transposed = orientation in _TRANSPOSING_ORIENTATIONS
    shown_w, shown_h = (stored_h, stored_w) if transposed else (stored_w, stored_h)
    target_w, target_h = fit_size(shown_w, shown_h, limits.fit_width_px, limits.fit_height_px)
    stored_target = (target_h, target_w) if transposed else (target_w, target_h)
    try:
        if fmt is ImageFormat.JPEG and image.mode in ("RGB", "L"):
            image.close()
            rgb = _decode_plain_jpeg(data, (stored_w, stored_h), stored_target)
        else:
            rgb = _decode_with_pillow(image, fmt, stored_target)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image declares too many pixels: {exc}") from None
    except (*_DECODER_ERRORS, cv2.error) as exc:
        raise BadImage(f"the {fmt.value} image could not be decoded: {exc}") from None
    finally:
        image.close()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
        raise BadImage(f"the image decoded to an unexpected shape {rgb.shape} {rgb.dtype}")
    rgb = apply_orientation(rgb, orientation)
    if (rgb.shape[1], rgb.shape[0]) != (target_w, target_h):
        rgb = cv2.resize(rgb, (target_w, target_h), interpolation=cv2.INTER_AREA).astype(np.uint8, copy=False)
    return DecodedFrame(
        rgb=np.ascontiguousarray(rgb),
        source_width=shown_w,
        source_height=shown_h,
        fmt=fmt,
    )
