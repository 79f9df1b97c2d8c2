"""Image files as users have them, and broken ones (issue 23, deliverable 3).

Each file is either read correctly (as a viewer shows it) or refused with one line naming
it; one ``derain derain`` call over all of them, in a child process with a time limit,
derains the good ones and names each bad one, never with a traceback and never hanging."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from derain_lib.data.io import ImageReadError, image_size, read_image, read_image_uint8
from derain_lib.models import build_model
from derain_lib.weights import OUR_FORMAT

RNG = np.random.default_rng(23)
_y, _x = np.mgrid[0:12, 0:20]
#: 20 wide, 12 high, smooth (JPEG keeps it within a few grey levels), no symmetry
PICTURE = np.stack([_x * 12, _y * 20, 255 - _x * 6 - _y * 8], axis=2).astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (pixel data far too short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def encoded(im: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def jpeg_header(width: int, height: int) -> bytes:
    """A JPEG whose SOF0 claims ``width`` x ``height``."""
    data = bytearray(encoded(Image.fromarray(PICTURE), "JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def good_files() -> dict[str, tuple[bytes, np.ndarray, int]]:
    """name -> (file bytes, the uint8 RGB a viewer shows, tolerance in grey levels)."""
    rgb = Image.fromarray(PICTURE)
    g16 = (np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 273).astype(np.uint16)
    g16_shown = np.repeat(np.rint(g16 / 65535 * 255).astype(np.uint8)[..., None], 3, axis=2)
    pal = rgb.quantize(16)
    cmyk = rgb.convert("CMYK")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    frames = [Image.new("RGB", (20, 12), c) for c in ((200, 30, 30), (30, 200, 30))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    apng = io.BytesIO()
    frames[0].save(apng, "PNG", save_all=True, append_images=frames[1:], duration=100)
    first = np.asarray(frames[0])
    return {
        "plain.png": (encoded(rgb, "PNG"), PICTURE, 0),
        "png_named.jpg": (encoded(rgb, "PNG"), PICTURE, 0),  # wrong extension: read by content
        "jpeg_named.png": (encoded(rgb, "JPEG", quality=95, subsampling=0), PICTURE, 12),
        "gray16.png": (encoded(Image.fromarray(g16), "PNG"), g16_shown, 1),
        "palette.png": (encoded(pal, "PNG"), np.asarray(pal.convert("RGB")), 0),
        "cmyk.jpg": (
            encoded(cmyk, "JPEG", quality=95, subsampling=0),
            np.asarray(cmyk.convert("RGB")),
            12,
        ),
        "rotated.jpg": (
            encoded(rgb, "JPEG", quality=95, subsampling=0, exif=exif.tobytes()),
            np.rot90(PICTURE, -1),
            12,
        ),
        "gif_anim.gif": (gif.getvalue(), first, 8),
        "apng.png": (apng.getvalue(), first, 0),
    }


def bad_files() -> dict[str, bytes]:
    png = encoded(Image.fromarray(PICTURE), "PNG")
    jpg = encoded(Image.fromarray(PICTURE), "JPEG")
    files = {f"random{i}.png": RNG.bytes(int(n)) for i, n in enumerate((1, 7, 100, 5000))}
    files |= {
        "random_jpeg.jpg": b"\xff\xd8\xff\xe0" + RNG.bytes(3000),
        "truncated.png": png[: len(png) // 2],
        "truncated_jpeg.jpg": jpg[: len(jpg) // 2],
        "empty.png": b"",
        "huge.png": png_header(60000, 60000),
        "huge_jpeg.jpg": jpeg_header(65000, 65000),
        "zero.png": png_header(0, 12),
        "text.png": b"hello, this is not a picture\n" * 10,
    }
    return files


@pytest.mark.parametrize("name", sorted(good_files()))
def test_each_kind_of_image_reads_as_a_viewer_shows_it(tmp_path: Path, name: str) -> None:
    data, shown, tol = good_files()[name]
    (tmp_path / name).write_bytes(data)
    got = read_image_uint8(tmp_path / name)
    assert got.shape == shown.shape
    assert np.abs(got.astype(int) - shown).max() <= tol
    assert image_size(tmp_path / name) == shown.shape[:2]
    f = read_image(tmp_path / name)
    assert f.dtype == np.float32 and f.min() >= 0 and f.max() <= 1


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_each_broken_file_is_refused_in_one_line_naming_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(bad_files()[name])
    with pytest.raises(ImageReadError) as e:
        read_image(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    if name.startswith("huge"):
        assert "limit" in msg and "pixels" in msg


def test_one_derain_call_over_every_kind_derains_or_names_each(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = {n: d for n, (d, _, _) in good_files().items() if Path(n).suffix in (".png", ".jpg")}
    bad = bad_files()
    for name, data in {**good, **bad}.items():
        (folder / name).write_bytes(data)
    extra = [tmp_path / "gif_anim.gif"]  # a GIF is taken when named (folders list PNG/JPEG/...)
    extra[0].write_bytes(good_files()["gif_anim.gif"][0])
    weights = tmp_path / "prenet.pt"
    torch.save(
        {"format": OUR_FORMAT, "model": "prenet", "model_kwargs": {},
         "state_dict": build_model("prenet").state_dict()},
        weights,
    )  # fmt: skip
    cmd = [sys.executable, "-m", "derain_lib.cli", "derain", str(folder), *map(str, extra),
           "-o", str(tmp_path / "out"), "--weights", str(weights), "--no-progress"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # never a hang
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted({f"{Path(n).stem}.png" for n in [*good, "gif_anim.gif"]})
    for name in bad:
        lines = [
            x for x in r.stderr.splitlines() if x.startswith(f"derain: error: {folder / name}:")
        ]
        assert len(lines) == 1 and lines[0].startswith("derain: error: "), (name, r.stderr)
    assert f"{len(good) + 1} derained, {len(bad)} failed" in r.stderr
