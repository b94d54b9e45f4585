"""Opening untrusted image files safely, and the one square + resize method used everywhere.

Training (``data_tools.datasets``), dataset preparation (``data_tools.prepare``) and, later,
metrics all go through ``open_rgb`` and ``square_resize`` so every image is decoded, squared and
resampled the same way: EXIF orientation applied, alpha composited on white, first frame of
animations, then a centre crop (or pad, or the seed's squash) and an antialiased LANCZOS resize.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

FITS = ("crop", "pad", "squash")
RESAMPLE = Image.Resampling.LANCZOS

# Truncated files are errors, never silently grey-filled.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class UnreadableImage(ValueError):
    """A file that is not a usable image; the message is the reason shown to the user."""


def _sniff(path: Path) -> str:
    """A short reason for a file Pillow cannot identify."""
    head = path.read_bytes()[:256].lstrip().lower()
    if not head:
        return "empty file"
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in head:
        return "not an image: an HTML/XML page saved with an image name"
    return "not an image: unknown format"


def open_rgb(path: Path, draft_size: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode ``path`` to an RGB image, safely.

    Args:
        path: the file.
        draft_size: when set, JPEGs may be decoded at a reduced scale that is still at least this
            many pixels on the short side (DCT scaling: much faster, no quality lost after a
            downsizing resize).

    Returns:
        (RGB image, (width, height) of the source as stored, before any draft scaling).

    Raises:
        UnreadableImage: empty, not an image, truncated/corrupt, or over Pillow's decompression
            bomb limit (its warning is treated as an error).
    """
    if path.stat().st_size == 0:
        raise UnreadableImage("empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                source_size = image.size
                if draft_size and image.format == "JPEG":
                    side = min(image.size)
                    scale = max(1, side // draft_size)
                    image.draft("RGB", (image.size[0] // scale, image.size[1] // scale))
                image.seek(0)  # animated: the first frame
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image)), _oriented(image, source_size)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnreadableImage(f"decompression bomb: {exc}".split(". ")[0]) from exc
        except Image.UnidentifiedImageError as exc:
            raise UnreadableImage(_sniff(path)) from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise UnreadableImage(f"truncated or corrupt: {exc}") from exc


def _oriented(image: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """The source size as displayed: EXIF rotations by 90/270 degrees swap width and height."""
    orientation = image.getexif().get(0x0112, 1)
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode -> RGB; transparency (RGBA, LA, P with transparency) composited on white."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "CMYK":
        # Pillow's CMYK -> RGB is a plain inversion; good enough for covers, no ICC profile use.
        return image.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit samples (a 16-bit PNG): scaled to 8 bits, not clipped at 255 (which turns
        # nearly every pixel white).
        values = np.asarray(image.convert("I"), dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        gray = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "F":
        return ImageOps.autocontrast(image.convert("L")).convert("RGB")
    return image.convert("RGB")


def square(image: Image.Image, fit: str = "crop") -> Image.Image:
    """Make the image square: centre ``crop``, ``pad`` (border colour) or ``squash`` (the seed)."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    width, height = image.size
    if width == height or fit == "squash":
        return image
    side = min(width, height) if fit == "crop" else max(width, height)
    if fit == "crop":
        return ImageOps.fit(image, (side, side), method=RESAMPLE, centering=(0.5, 0.5))
    edge = [image.getpixel((x, y)) for x in (0, width - 1) for y in (0, height - 1)]
    colour = tuple(sum(c[i] for c in edge) // len(edge) for i in range(3))
    canvas = Image.new("RGB", (side, side), colour)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def square_resize(image: Image.Image, size: int, fit: str = "crop") -> Image.Image:
    """``square`` then an antialiased LANCZOS resize to ``size`` x ``size``."""
    return square(image, fit).resize((size, size), RESAMPLE)
