"""Image codecs and the paper's preprocessing, shared by the shard and LLaVA readers.

* :func:`decode_image`: encoded bytes -> uint8 (H, W, 3) RGB (EXIF orientation applied; alpha
  composited on white, as img2dataset does).
* :func:`encode_image`: uint8 (H, W, 3) -> PNG (lossless, exact round trip) / JPEG / WebP bytes.
* :func:`sniff_format`: the format of encoded bytes from their magic number.
* :func:`resize_center_crop`: shorter side to ``size`` (bicubic), then a centre crop: uint8 (size, size, 3)
  (the paper's 224 and 420 inputs).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}


class ImageDecodeError(ValueError):
    """Bytes that PIL cannot decode into an image."""


def decode_image(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W, 3) RGB."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageDecodeError(f"cannot decode image ({len(data)} bytes): {err}") from err


def check_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    return image


def encode_image(image: np.ndarray, *, fmt: str = "png", quality: int = 95) -> bytes:
    """uint8 (H, W, 3) -> encoded bytes; ``fmt`` png (lossless), jpg/jpeg or webp (lossy, ``quality``)."""
    if fmt not in FORMATS:
        raise ValueError(f"image format must be one of {sorted(FORMATS)}, got {fmt!r}")
    buf = io.BytesIO()
    kwargs = {} if fmt == "png" else {"quality": quality}
    Image.fromarray(check_rgb(image)).save(buf, format=FORMATS[fmt], **kwargs)
    return buf.getvalue()


def sniff_format(data: bytes) -> str | None:
    """'jpg', 'png' or 'webp' from the first bytes; None if none of them."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def resize_center_crop(image, size: int) -> np.ndarray:
    """uint8 (H, W, 3) (or a PIL image) -> uint8 (size, size, 3): shorter side to ``size`` (bicubic),
    centre crop. An image already ``size`` x ``size`` is returned unchanged."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(check_rgb(image))
    im = im.convert("RGB")
    w, h = im.size
    if (w, h) != (size, size):
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        im = im.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return np.asarray(im, dtype=np.uint8).copy()
