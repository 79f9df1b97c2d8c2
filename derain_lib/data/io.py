"""Image files in and out: any PNG/JPEG/BMP/TIFF as the RGB a viewer shows (grey expanded,
alpha dropped, 16-bit scaled, EXIF orientation applied), or one line naming the file."""

from __future__ import annotations

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
_ORIENTATION = 0x0112  # the EXIF/TIFF orientation tag


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """Pillow's image of ``path`` (header read), or a one-line :class:`ImageReadError`."""
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():  # a header over Image.MAX_IMAGE_PIXELS: refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            if min(im.size) < 1:
                raise ImageReadError(f"{path}: image header says {im.width}x{im.height} pixels")
            yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(f"{path}: refused unread: {e} (PIL.Image.MAX_IMAGE_PIXELS)") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except ImageReadError:
        raise
    except _DECODE_ERRORS as e:
        raise ImageReadError(f"{path}: corrupt or truncated image ({e})") from None


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """``a`` as EXIF ``orientation`` says to display it (as ``ImageOps.exif_transpose``)."""
    if orientation in (5, 6, 7, 8):
        a = a.transpose(1, 0, 2)
    flip = (orientation - 1) % 4
    return a[:: -1 if flip in (2, 3) else 1, :: -1 if flip in (1, 2) else 1]


def _decode(path: Path) -> np.ndarray:
    """RGB array of a file: uint8 for 8-bit images, float64 in [0, 1] for deeper ones."""
    with _opened(path) as raw:  # a damaged EXIF block or colour table: one line too
        raw.load()
        bits = raw.tag_v2.get(258, 8) if raw.format == "TIFF" else 8  # BitsPerSample
        if raw.mode in ("RGB", "RGBA", "RGBX") and max(np.atleast_1d(bits)) == 16:
            import tifffile  # Pillow reduces 16-bit colour TIFFs to 8 bits

            a = tifffile.imread(path)[..., :3].astype(np.float64) / 65535.0
            return np.ascontiguousarray(_orient(a, raw.getexif().get(_ORIENTATION, 1)))
        im = ImageOps.exif_transpose(raw)
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            a = np.asarray(im, dtype=np.float64) / (1.0 if im.mode == "F" else 65535.0)
            return np.repeat(a[..., None], 3, axis=2)
        return np.asarray(im.convert("RGB"))  # L, P, LA, RGBA, CMYK, ... -> RGB


def read_image(path: str | Path) -> np.ndarray:
    """Float32 RGB (H, W, 3) in [0, 1]."""
    a = _decode(Path(path))
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    return np.clip(a, 0, 1).astype(np.float32)


def read_image_uint8(path: str | Path) -> np.ndarray:
    """uint8 RGB (H, W, 3): the pixel values metrics are computed on."""
    a = _decode(Path(path))
    return a if a.dtype == np.uint8 else np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)


def read_alpha(path: str | Path) -> np.ndarray | None:
    """The alpha channel (uint8 (H, W), oriented as the colours) of an image, or None."""
    with _opened(Path(path)) as raw:
        if "A" not in raw.getbands() and "transparency" not in raw.info:
            return None
        return np.asarray(ImageOps.exif_transpose(raw).convert("RGBA"))[..., 3].copy()


def write_image(path: str | Path, rgb_uint8: np.ndarray, **save: object) -> Path:
    """Write a uint8 RGB array atomically, in the format its suffix names (or ``format=``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb_uint8)).save(tmp, **save)
    return path


def write_png(path: str | Path, rgb_uint8: np.ndarray, compress_level: int = 6) -> Path:
    """:func:`write_image` as PNG; ``compress_level`` 1 is fast, 9 small."""
    return write_image(path, rgb_uint8, format="PNG", compress_level=compress_level)


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder (not recursive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) as :func:`read_image` will return it, from the header only (fast)."""
    with _opened(Path(path)) as im:
        w, h = im.size
        try:
            orientation = im.getexif().get(_ORIENTATION, 1)
        except _DECODE_ERRORS:
            orientation = 1  # a damaged EXIF block: decoding says so
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def scan_images(paths: str | Path | list[Path], decode: bool = True) -> list[tuple[Path, str]]:
    """Every ``(path, one-line problem)`` of a folder's images (recursively) or of the files."""
    if isinstance(paths, str | Path):
        if not Path(paths).is_dir():
            raise ImageReadError(f"{paths}: not a folder")
        paths = sorted(
            p for p in Path(paths).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
    problems = []
    for p in paths:
        try:
            _decode(Path(p)) if decode else image_size(p)
        except ImageReadError as e:
            problems.append((Path(p), str(e)))
    return problems


def fit_size(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """``image`` shrunk (Lanczos, aspect kept) so its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    f = max_side / max(h, w)
    size = (max(8, round(w * f)), max(8, round(h * f)))
    u8 = Image.fromarray(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))
    return np.asarray(u8.resize(size, Image.LANCZOS), dtype=np.float32) / np.float32(255)
