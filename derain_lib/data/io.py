"""Image files in and out: any PNG/JPEG/BMP/TIFF to RGB, with one-line errors.

Grayscale is expanded to three channels, alpha is dropped (:func:`read_alpha` reads it),
16-bit images are scaled to [0, 1] by 65535, palette and CMYK images are converted to RGB,
an animated GIF/PNG gives its first frame, and the EXIF orientation is applied, so every
reader sees the photo the way a viewer shows it. A header claiming more than
:func:`max_pixels` is refused unread (a decompression bomb), as are zero sizes and truncated
pixel data, each in one line. A folder scan (`scan_images`, `check_images`) reports every
bad file at once instead of stopping at the first."""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DerainError
from ..fsutil import IMAGE_SUFFIXES, atomic_path


class ImageReadError(DerainError, ValueError):
    """An image file that is missing, empty, truncated or not an image."""


#: What a corrupt file can make Pillow's decoders raise (besides its own error types).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error, IndexError)


def max_pixels() -> int:
    """The largest image (width x height) read: Pillow's ``Image.MAX_IMAGE_PIXELS``
    (about 89 Mpx, e.g. 9459 x 9459); a header claiming more is refused unread, as a
    possible decompression bomb."""
    return int(Image.MAX_IMAGE_PIXELS or 0) or 2**62


def _too_large(path: Path, size: str) -> ImageReadError:
    return ImageReadError(
        f"{path}: image of {size} is over the limit of {max_pixels()} pixels "
        "(PIL.Image.MAX_IMAGE_PIXELS); refused unread as a possible decompression bomb"
    )


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """Pillow's image of ``path``; a missing, empty, undecodable or oversized file is a
    one-line error. Animated GIF/PNG/WebP files give their first frame."""
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > max_pixels():
                raise _too_large(path, f"{w}x{h} pixels")
            if w < 1 or h < 1:
                raise ImageReadError(f"{path}: image header says {w}x{h} pixels")
            yield im
    except Image.DecompressionBombError as e:  # Pillow refuses over twice its limit at open
        m = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(path, f"{m.group(1) if m else 'more'} pixels") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except ImageReadError:
        raise
    except _DECODE_ERRORS as e:
        raise ImageReadError(f"{path}: corrupt or truncated image ({e})") from None


def _open(path: Path) -> Image.Image:
    """The decoded image as stored (orientation not yet applied), or a one-line error."""
    with _opened(path) as im:
        im.load()
        return im


def _to_array(im: Image.Image) -> np.ndarray:
    """RGB array: uint8 for 8-bit images, float64 in [0, 1] for 16-bit/float ones."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64) / 65535.0
        return np.repeat(a[..., None], 3, axis=2)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        return np.repeat(a[..., None], 3, axis=2)
    a = np.asarray(im.convert("RGB"))  # L, P, LA, RGBA, CMYK, ... -> RGB, alpha dropped
    return a


#: EXIF/TIFF orientation tag, and the array operation that displays each value upright.
_ORIENTATION = 0x0112
_ORIENT_OPS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _is_rgb16_tiff(im: Image.Image) -> bool:
    """Pillow reduces 16-bit colour TIFFs to 8 bits; these are read with tifffile instead."""
    if im.format != "TIFF" or im.mode not in ("RGB", "RGBA", "RGBX"):
        return False
    bits = im.tag_v2.get(258, (8,))  # BitsPerSample
    return max(bits if isinstance(bits, tuple) else (bits,)) == 16


def _decode(path: Path) -> np.ndarray:
    """RGB array of a file: uint8 for 8-bit images, float64 in [0, 1] for deeper ones.

    16-bit colour PNGs keep Pillow's 8-bit reading (the high byte: within 1/255)."""
    raw = _open(path)
    try:
        if _is_rgb16_tiff(raw):
            import tifffile  # a dependency of scikit-image

            a = tifffile.imread(path)[..., :3].astype(np.float64) / 65535.0
            op = _ORIENT_OPS.get(raw.getexif().get(_ORIENTATION, 1))
            return np.ascontiguousarray(op(a)) if op else a
        return _to_array(ImageOps.exif_transpose(raw))
    except _DECODE_ERRORS as e:  # a damaged EXIF block or colour table
        raise ImageReadError(f"{path}: corrupt image ({e})") from None


def read_image(path: str | Path) -> np.ndarray:
    """Float32 RGB (H, W, 3) in [0, 1]."""
    a = _decode(Path(path))
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    return np.clip(a, 0, 1).astype(np.float32)


def read_alpha(path: str | Path) -> np.ndarray | None:
    """The alpha channel of an image that has one (uint8 (H, W), oriented as
    :func:`read_image` orients the colours), else None."""
    raw = _open(Path(path))
    if "A" not in raw.getbands() and "transparency" not in raw.info:
        return None
    try:
        return np.asarray(ImageOps.exif_transpose(raw).convert("RGBA"))[..., 3].copy()
    except _DECODE_ERRORS as e:
        raise ImageReadError(f"{path}: corrupt image ({e})") from None


def read_image_uint8(path: str | Path) -> np.ndarray:
    """uint8 RGB (H, W, 3): the pixel values metrics are computed on."""
    a = _decode(Path(path))
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)


def write_png(path: str | Path, rgb_uint8: np.ndarray, compress_level: int = 6) -> Path:
    """Write a uint8 RGB array as PNG, atomically (parent folders created); level 1 is fast,
    9 small. A killed process leaves the complete file or none, never a truncated one."""
    return write_image(path, rgb_uint8, format="PNG", compress_level=compress_level)


def write_image(path: str | Path, rgb_uint8: np.ndarray, **save: object) -> Path:
    """Write a uint8 RGB array atomically (see :func:`derain_lib.fsutil.atomic_path`), in
    the format its suffix names (PNG, JPEG, BMP, TIFF) unless ``save`` gives ``format``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb_uint8)).save(tmp, **save)
    return path


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder (not recursive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) as :func:`read_image` will return it, from the header only (fast).

    Used to count training patches of thousands of files without decoding them."""
    with _opened(Path(path)) as im:
        w, h = im.size
        try:
            orientation = im.getexif().get(_ORIENTATION, 1)
        except _DECODE_ERRORS:
            orientation = 1  # a damaged EXIF block: decoding says so
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


class ImageScanError(ImageReadError):
    """One or more unreadable images; ``problems`` lists every one (path, message)."""

    def __init__(self, problems: list[tuple[Path, str]]):
        self.problems = problems
        lines = "\n  ".join(msg for _, msg in problems)
        super().__init__(f"{len(problems)} unreadable image file(s):\n  {lines}")


def scan_images(paths: str | Path | list[Path], decode: bool = True) -> list[tuple[Path, str]]:
    """Try every image (a folder, recursively, or a list of files); return ALL problems.

    Each problem is ``(path, one-line message)``; an empty list means every file reads.
    ``decode=False`` only checks headers (much faster, misses truncated pixel data)."""
    if isinstance(paths, str | Path):
        folder = Path(paths)
        if not folder.is_dir():
            raise ImageReadError(f"{folder}: not a folder")
        paths = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
    problems = []
    for p in paths:
        try:
            if decode:
                _decode(Path(p))
            else:
                image_size(p)
        except ImageReadError as e:
            problems.append((Path(p), str(e)))
    return problems


def check_images(paths: str | Path | list[Path], decode: bool = True) -> None:
    """Raise one :class:`ImageScanError` naming every unreadable image, or return."""
    problems = scan_images(paths, decode)
    if problems:
        raise ImageScanError(problems)


def fit_size(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """``image`` shrunk (Lanczos, aspect kept) so its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    f = max_side / max(h, w)
    size = (max(8, round(w * f)), max(8, round(h * f)))
    u8 = Image.fromarray(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))
    return np.asarray(u8.resize(size, Image.LANCZOS), dtype=np.float32) / np.float32(255)
