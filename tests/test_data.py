"""Data: image I/O edge cases, benchmark layouts, patches, synthesiser, embedded set, catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from derain_lib.cli import main
from derain_lib.data import catalog
from derain_lib.data.datasets import (
    DatasetLayoutError,
    PairSizeError,
    open_dataset,
)
from derain_lib.data.embedded import SIZES, build_embedded, embedded_dataset
from derain_lib.data.fetch import sha256_file
from derain_lib.data.io import (
    ImageReadError,
    image_size,
    read_image,
    read_image_uint8,
    scan_images,
    write_png,
)
from derain_lib.data.patches import (
    PAPER_STRIDES,
    PatchSet,
    count_patches,
    grid_positions,
)
from derain_lib.data.synth import add_rain, line_kernel
from derain_lib.errors import DerainError
from derain_lib.metrics import score_pair

RNG = np.random.default_rng(0)


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- image I/O


def test_grayscale_is_expanded(tmp_path: Path) -> None:
    g = rgb(5, 7)[..., 0]
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    a = read_image_uint8(tmp_path / "g.png")
    assert a.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(a[..., c], g)


def test_alpha_is_dropped(tmp_path: Path) -> None:
    x = rgb(4, 6)
    alpha = np.zeros((4, 6, 1), np.uint8)  # fully transparent: colour must survive as is
    Image.fromarray(np.concatenate([x, alpha], 2), "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "a.png"), x)


def test_16bit_grey_png_is_scaled(tmp_path: Path) -> None:
    v = np.array([[0, 257, 32768, 65535]], np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    a = read_image(tmp_path / "g16.png")
    np.testing.assert_allclose(a[0, :, 0], v[0] / 65535.0, atol=1e-6)
    assert read_image_uint8(tmp_path / "g16.png")[0, :, 1].tolist() == [0, 1, 128, 255]


def test_16bit_rgb_tiff_keeps_full_precision(tmp_path: Path) -> None:
    import tifffile

    v = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 1000 + 7).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c16.tif", v, photometric="rgb")
    np.testing.assert_allclose(read_image(tmp_path / "c16.tif"), v / 65535.0, atol=1e-7)


@pytest.mark.parametrize(
    "orientation,op",
    [(3, lambda a: np.rot90(a, 2)), (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))],
)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, op) -> None:
    x = rgb(4, 6)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(x).save(tmp_path / "o.png", exif=exif)
    a = read_image_uint8(tmp_path / "o.png")
    np.testing.assert_array_equal(a, op(x))
    assert image_size(tmp_path / "o.png") == a.shape[:2]


@pytest.mark.parametrize("suffix", [".jpg", ".bmp", ".tif"])
def test_other_formats_read(tmp_path: Path, suffix: str) -> None:
    x = np.full((8, 8, 3), 100, np.uint8)
    Image.fromarray(x).save(tmp_path / f"x{suffix}")
    a = read_image(tmp_path / f"x{suffix}")
    assert a.dtype == np.float32 and a.shape == (8, 8, 3)
    assert abs(float(a.mean()) - 100 / 255) < 2 / 255


def _bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    write_png(folder / "good.png", rgb(16, 16))
    full = (folder / "good.png").read_bytes()
    bad = {
        "empty": folder / "empty.png",
        "corrupt": folder / "corrupt.png",
        "truncated": folder / "truncated.png",
    }
    bad["empty"].write_bytes(b"")
    bad["corrupt"].write_bytes(b"this is not an image at all" * 10)
    bad["truncated"].write_bytes(full[: len(full) // 2])
    return bad


@pytest.mark.parametrize(
    "kind,words", [("empty", "empty"), ("corrupt", "not a readable"), ("truncated", "truncated")]
)
def test_bad_file_raises_one_clear_error(tmp_path: Path, kind: str, words: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ImageReadError) as e:
        read_image(path)
    msg = str(e.value)
    assert str(path) in msg and words in msg and "\n" not in msg


def test_missing_file_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_scan_reports_every_bad_file_at_once(tmp_path: Path, capsys) -> None:
    bad = _bad_files(tmp_path / "d" / "sub")
    write_png(tmp_path / "d" / "ok2.png", rgb(8, 8))
    problems = scan_images(tmp_path / "d")
    assert sorted(p for p, _ in problems) == sorted(bad.values())
    assert scan_images(tmp_path / "d" / "sub", decode=False)  # headers catch empty/corrupt
    assert main(["data", "scan", str(tmp_path / "d")]) == 2
    out = capsys.readouterr()
    assert all(str(p) in out.out + out.err for p in bad.values())


# ---------------------------------------------------------------- layouts


def _pair(rainy: Path, clean: Path, h: int = 12, w: int = 16, seed: int = 0) -> None:
    write_png(rainy, rgb(h, w, seed))
    write_png(clean, rgb(h, w, seed + 100))


def test_rain100_file_form_ignores_other_files(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        _pair(tmp_path / f"rain-{i:03d}.png", tmp_path / f"norain-{i:03d}.png", seed=i)
        write_png(tmp_path / f"rainstreak-{i:03d}.png", rgb(12, 16))
    ds = open_dataset(tmp_path)
    assert ds.layout == "rain100" and len(ds) == 3 and not ds.partial
    assert [p.name for p in ds.pairs] == ["rain-001", "rain-002", "rain-003"]
    rainy, clean = ds.load(1)
    assert rainy.shape == clean.shape == (12, 16, 3) and rainy.dtype == np.float32
    np.testing.assert_array_equal(read_image_uint8(ds.pairs[1].rainy), rgb(12, 16, 2))


def test_rain100_folder_forms(tmp_path: Path) -> None:
    a, b = tmp_path / "folders", tmp_path / "prenet"
    for i in (1, 2):
        _pair(a / "rainy" / f"rain-{i}.png", a / "norain" / f"norain-{i}.png")
        _pair(b / "rainy" / f"rain-{i:03d}.png", b / f"norain-{i:03d}.png")
    for root in (a, b):
        ds = open_dataset(root, layout="rain100")
        assert len(ds) == 2 and not ds.partial and ds.pairs[0].clean is not None


def test_rain1400_layout_and_partial_scene(tmp_path: Path) -> None:
    for n in (901, 902):
        write_png(tmp_path / "ground_truth" / f"{n}.jpg", rgb(10, 14))
        for k in range(1, 15):
            write_png(tmp_path / "rainy_image" / f"{n}_{k}.jpg", rgb(10, 14, k))
    ds = open_dataset(tmp_path)
    assert ds.layout == "rain1400" and len(ds) == 28 and not ds.partial
    assert ds.pairs[14].name == "902_1" and ds.pairs[14].clean.name == "902.jpg"
    assert len(ds.files()) == 30  # clean images listed once
    (tmp_path / "rainy_image" / "902_14.jpg").unlink()
    assert open_dataset(tmp_path).partial


def test_rain12_forms_pair_by_index(tmp_path: Path) -> None:
    a, b, c = tmp_path / "inline", tmp_path / "test12", tmp_path / "crop"
    for i in range(1, 4):
        _pair(a / f"{i}_in.png", a / f"{i}_GT.png")
        _pair(b / "rainy" / f"{i}.png", b / "groundtruth" / f"{i}.png")
        _pair(c / "inputcrop" / f"{i}.png", c / "cleancrop" / f"{i}.png")
    for root in (a, b, c):
        ds = open_dataset(root)
        assert ds.layout == "rain12" and len(ds) == 3 and not ds.partial, root


def test_unknown_layout_names_the_folder(tmp_path: Path) -> None:
    write_png(tmp_path / "holiday.png", rgb(8, 8))
    with pytest.raises(DatasetLayoutError, match=str(tmp_path)):
        open_dataset(tmp_path)
    with pytest.raises(DatasetLayoutError, match="not a folder"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(DatasetLayoutError, match="unknown layout"):
        open_dataset(tmp_path, layout="rain9000")


def test_size_mismatch_is_reported_by_name(tmp_path: Path) -> None:
    _pair(tmp_path / "rain-001.png", tmp_path / "norain-001.png")
    write_png(tmp_path / "rain-002.png", rgb(12, 16))
    write_png(tmp_path / "norain-002.png", rgb(12, 17))
    with pytest.raises(PairSizeError, match="norain-002.png"):
        open_dataset(tmp_path).load(1)
    with pytest.raises(
        PairSizeError, match=r"1 pair\(s\) whose rainy and clean sizes differ: rain-002$"
    ):
        catalog.prepare(
            "rain100l", tmp_path, index_out=tmp_path.parent / "i.json", allow_mismatch=True
        )


def test_partial_sets(tmp_path: Path) -> None:
    for i in (1, 3):  # gap at 2
        _pair(tmp_path / f"rain-{i:03d}.png", tmp_path / f"norain-{i:03d}.png")
    assert open_dataset(tmp_path).partial
    write_png(tmp_path / "rain-002.png", rgb(12, 16))  # rainy without its clean image
    ds = open_dataset(tmp_path)
    assert ds.partial and ds.unpaired == [tmp_path / "rain-002.png"]
    write_png(tmp_path / "norain-002.png", rgb(12, 16))
    assert not open_dataset(tmp_path).partial
    assert open_dataset(tmp_path, expected=100).partial


def test_manifest_hash_tracks_content(tmp_path: Path) -> None:
    _pair(tmp_path / "rain-001.png", tmp_path / "norain-001.png")
    h1 = open_dataset(tmp_path).manifest_sha256()
    assert h1 == open_dataset(tmp_path).manifest_sha256() and len(h1) == 64
    write_png(tmp_path / "rain-001.png", rgb(12, 16, 7))
    assert open_dataset(tmp_path).manifest_sha256() != h1


# ---------------------------------------------------------------- patches


def test_patch_arithmetic() -> None:
    # Rain100 images are 481x321: floor((321-120)/s)+1 by floor((481-120)/s)+1
    assert count_patches(321, 481, 120, 40) == 6 * 10
    assert count_patches(481, 321, 120, 80) == 5 * 3
    assert count_patches(321, 481, 120, 100) == 3 * 4
    assert grid_positions(119, 120, 40) == 0 and grid_positions(120, 120, 40) == 1
    assert PAPER_STRIDES == {"rain100l": 40, "rain100h": 80, "rain1400": 100}
    with pytest.raises(ValueError):
        grid_positions(10, 0, 1)


def test_paper_patch_counts_on_benchmark_sized_images(tmp_path: Path, capsys) -> None:
    z = np.zeros((321, 481, 3), np.uint8)
    for i, img in enumerate([z, z.transpose(1, 0, 2), z], start=1):
        write_png(tmp_path / f"rain-{i}.png", img)
        write_png(tmp_path / f"norain-{i}.png", img)
    for paper, count in (
        ("rain100l", "x2 with h-flip = 360"),
        ("rain100h", "-> 45"),
        ("rain1400", "-> 36"),
    ):
        assert main(["data", "patches", str(tmp_path), "--paper", paper]) == 0
        assert count in capsys.readouterr().out  # 3 images x 60 x 2 / x 15 / x 12
    # the whole RainTrainL (200 such images) by the same arithmetic: 24,000 patches
    assert 200 * count_patches(321, 481, 120, PAPER_STRIDES["rain100l"]) * 2 == 24000


def test_flip_copies_are_cut_from_the_flipped_image(tmp_path: Path) -> None:
    # a 481x321 image whose pixels encode their coordinates (R, G: x, y mod 256; B: the rest)
    yy, xx = np.mgrid[0:321, 0:481]
    img = np.stack([xx % 256, yy % 256, xx // 256 + 2 * (yy // 256)], axis=-1).astype(np.uint8)
    write_png(tmp_path / "rain-1.png", img)
    write_png(tmp_path / "norain-1.png", img)
    ps = PatchSet(open_dataset(tmp_path), 120, PAPER_STRIDES["rain100l"], hflip=True)
    assert ps.base_count == count_patches(321, 481, 120, 40) and len(ps) == 2 * ps.base_count
    flipped = img[:, ::-1]
    for i in range(ps.base_count, len(ps)):
        k, y, x, flip = ps.locate(i)
        assert flip and (k, y, x) == ps.locate(i - ps.base_count)[:3]
        got = np.rint(ps[i][0].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        np.testing.assert_array_equal(got, flipped[y : y + 120, x : x + 120])
        # the mirrored unflipped crop is a different patch: (481 - 120) mod 40 = 1 px shift
        assert not np.array_equal(got, img[y : y + 120, x : x + 120][:, ::-1])


def test_patchset_streams_exact_crops_and_flips(tmp_path: Path) -> None:
    sizes = [(20, 28), (16, 16), (9, 30), (24, 20)]  # the third is too small: no patches
    for i, (h, w) in enumerate(sizes, start=1):
        _pair(tmp_path / f"rain-{i:03d}.png", tmp_path / f"norain-{i:03d}.png", h, w, seed=i)
    ds = open_dataset(tmp_path)
    ps = PatchSet(ds, patch=10, stride=6, hflip=True)
    base = sum(count_patches(h, w, 10, 6) for h, w in sizes)
    assert ps.base_count == base and len(ps) == 2 * base
    seen = set()
    for i in range(len(ps)):
        k, y, x, flip = ps.locate(i)
        assert flip == (i >= base)
        seen.add((k, y, x, flip))
        rainy, clean = ps[i]
        r, c = ds.load(k)
        if flip:
            r, c = r[:, ::-1], c[:, ::-1]
        want_r, want_c = r[y : y + 10, x : x + 10], c[y : y + 10, x : x + 10]
        np.testing.assert_array_equal(rainy.numpy(), want_r.transpose(2, 0, 1))
        np.testing.assert_array_equal(clean.numpy(), want_c.transpose(2, 0, 1))
    assert len(seen) == len(ps)
    assert 2 not in {k for k, *_ in seen}
    np.testing.assert_array_equal(ps[5][0].numpy(), ps[5][0].numpy())
    with pytest.raises(IndexError):
        ps[len(ps)]
    with pytest.raises(DerainError, match="no image is at least 31x31"):
        PatchSet(ds, patch=31, stride=6)


# ---------------------------------------------------------------- synthesiser


def test_synth_is_deterministic() -> None:
    """(Its speed: benchmarks/latency.py.)"""
    img = RNG.random((512, 512, 3)).astype(np.float32)
    for preset in ("light", "heavy"):
        a = add_rain(img, preset, seed=3)
        assert a.tobytes() == add_rain(img, preset, seed=3).tobytes()
        assert a.tobytes() != add_rain(img, preset, seed=4).tobytes()
        assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
        assert (a >= img - 1e-6).mean() > 0.5  # screen blend only brightens (haze aside)
    k = line_kernel(15, 30.0)
    assert abs(k.sum() - 1) < 1e-9
    with pytest.raises(ValueError, match="unknown rain preset"):
        add_rain(img, "drizzle")


# ---------------------------------------------------------------- embedded set


@pytest.fixture(scope="module")
def quick_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("embedded")
    build_embedded("quick", root)
    return root


def _input_psnr(ds) -> float:
    return float(np.mean([score_pair(*ds.load(i))[0] for i in range(len(ds))]))


def test_embedded_quick_has_paper_like_input_psnr(quick_root: Path) -> None:
    """(How long it takes to build: benchmarks/latency.py.)"""
    root = quick_root
    spec = SIZES["quick"]
    light = [embedded_dataset("light", s, "quick", root) for s in ("train", "test")]
    heavy = [embedded_dataset("heavy", s, "quick", root) for s in ("train", "test")]
    assert [len(d) for d in light] == [spec["train"], spec["test"]] == [len(d) for d in heavy]
    # Input PSNR (rainy vs clean, MATLAB Y) in the range of the real sets, on every split
    for d in light:
        assert 25 <= _input_psnr(d) <= 29, (d.name, _input_psnr(d))
    for d in heavy:
        assert 12 <= _input_psnr(d) <= 16, (d.name, _input_psnr(d))
    for d in light + heavy:
        assert {tuple(sorted(s)) for s in d.sizes()} == {(spec["height"], spec["width"])}


def test_embedded_smoke_is_deterministic_cached_and_verifiable(tmp_path: Path, monkeypatch) -> None:
    a = build_embedded("smoke", tmp_path / "a")
    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "b"))
    ds = embedded_dataset("light", "train", "smoke")
    assert ds.root.is_relative_to(tmp_path / "b") and len(ds) == 8 and not ds.partial
    assert len(embedded_dataset("heavy", "test", "smoke")) == SIZES["smoke"]["test"]
    b = ds.root.parents[1]
    ma = json.loads((a / "manifest.json").read_text())["files"]
    mb = json.loads((b / "manifest.json").read_text())["files"]
    assert ma == mb  # same recipe, same bytes
    stamp = (a / "manifest.json").stat().st_mtime_ns
    assert build_embedded("smoke", tmp_path / "a") == a
    assert (a / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert all(sha256_file(a / rel) == digest for rel, digest in ma.items())
    with pytest.raises(DerainError, match="unknown rain preset"):
        embedded_dataset("drizzle", "train", "smoke", tmp_path / "a")


# ---------------------------------------------------------------- catalog / prepare


def test_catalog_lists_every_set_with_sources_and_manifests() -> None:
    assert set(catalog.CATALOG) >= {
        "rain100l",
        "rain100h",
        "rain100h-crop480",
        "rain1400",
        "rain12",
        "embedded",
    }
    e = catalog.CATALOG["rain1400"]
    assert e.splits["train"].pairs == 12600 and e.splits["test"].clean == 100
    for name in ("rain100l", "rain100h-crop480"):
        m = catalog.load_manifest(catalog.CATALOG[name].splits["test"].manifest)
        assert len(m) == 200 and all(len(h) == 64 for h in m.values())
    for e in catalog.CATALOG.values():
        assert e.sources and all(s.url for s in e.sources)


def test_prepare_shared_sample_is_verified_and_partial(
    shared: Path, tmp_path: Path, capsys
) -> None:
    sample = shared / "data" / "rain100l_sample"
    before = {p: p.stat().st_mtime_ns for p in sample.rglob("*")}
    out = tmp_path / "idx.json"
    assert (
        main(["data", "prepare", "rain100l", "--from", str(sample), "--index-out", str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert "verified 4 of 100 pairs" in text and "PARTIAL" in text
    assert "8 of 8 files match" in text
    index = json.loads(out.read_text())
    assert index["partial"] and index["pairs_found"] == 4 and index["sha256_matched"] == 8
    assert {p.name for p in catalog.open_index(out).pairs} == {
        "rain-001",
        "rain-025",
        "rain-050",
        "rain-100",
    }
    assert {p: p.stat().st_mtime_ns for p in sample.rglob("*")} == before


def _copy_sample(shared: Path, dest: Path) -> Path:
    src = shared / "data" / "rain100l_sample"
    for f in src.rglob("*.png"):
        (dest / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        (dest / f.relative_to(src)).write_bytes(f.read_bytes())
    return dest


def test_prepare_rejects_changed_files_and_protects_user_folder(
    shared: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "data"))
    copy = _copy_sample(shared, tmp_path / "copy")
    write_png(
        copy / "rainy" / "rain-025.png", read_image_uint8(copy / "rainy" / "rain-025.png") // 2
    )
    with pytest.raises(DerainError, match="rain-025.png"):
        catalog.prepare("rain100l", copy)
    rep = catalog.prepare("rain100l", copy, allow_mismatch=True)
    assert (
        rep.index["sha256_matched"] == 7
        and rep.index["sha256_differ"]
        and rep.index_path == tmp_path / "data" / "index" / "rain100l-test.json"
    )
    assert catalog.prepared_dataset("rain100l").partial
    with pytest.raises(DerainError, match="inside the data folder"):
        catalog.prepare("rain100l", copy, allow_mismatch=True, index_out=copy / "index.json")
    (tmp_path / "notes.json").write_text("my notes")
    with pytest.raises(DerainError, match="refusing to overwrite"):
        catalog.prepare("rain100l", copy, allow_mismatch=True, index_out=tmp_path / "notes.json")
    assert (tmp_path / "notes.json").read_text() == "my notes"


def test_prepare_cropped_variant_matches_upstream_names(tmp_path: Path) -> None:
    for i in (1, 2):
        _pair(tmp_path / "inputcrop" / f"{i}.png", tmp_path / "cleancrop" / f"{i}.png")
    with pytest.raises(DerainError, match="catalog: rainy/rain-001.png"):
        catalog.prepare("rain100h-crop480", tmp_path, index_out=tmp_path.parent / "i.json")


def test_prepare_without_a_copy_says_where_to_get_it(tmp_path: Path) -> None:
    # downloads are derain fetch's (catalog.fetch_dataset): prepare only verifies a copy
    with pytest.raises(DerainError, match="pan.baidu.com"):
        catalog.prepare("rain1400", None)
    with pytest.raises(DerainError, match="yu-li.github.io"):
        catalog.prepare("rain12", None)
    with pytest.raises(DerainError, match="no 'train' split"):
        catalog.prepare("rain12", tmp_path, split="train")
    with pytest.raises(SystemExit):
        main(["data", "prepare", "rain100l", "--download"])  # the twin downloader is gone


def test_cli_list_patches_and_prepare_embedded(tmp_path: Path, capsys) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("rain100l", "rain100h-crop480", "rain1400", "rain12", "embedded", "pan.baidu.com"):
        assert name in out
    assert main(["data", "prepare", "embedded", "--size", "smoke", "--from", str(tmp_path)]) == 0
    assert "light train 8 pairs, mean Input PSNR" in capsys.readouterr().out
    folder = next(tmp_path.glob("smoke-*")) / "light" / "train"
    assert main(["data", "patches", str(folder), "--patch", "32", "--stride", "16", "--hflip"]) == 0
    n = 8 * count_patches(64, 96, 32, 16) * 2
    assert f"= {n}" in capsys.readouterr().out


def test_docs_figure_is_generated(shared: Path, tmp_path: Path) -> None:
    from derain_lib.viz import save_figure
    from derain_lib.viz.data import synthetic_vs_real

    out = save_figure(synthetic_vs_real(shared), tmp_path / "fig.png", dpi=100)
    with Image.open(out) as im:
        assert im.size == (1200, 700)


def test_prepare_reports_all_bad_images_and_size_mismatches(tmp_path: Path, capsys) -> None:
    for i in (1, 2, 3):
        _pair(tmp_path / "d" / f"rain-{i:03d}.png", tmp_path / "d" / f"norain-{i:03d}.png")
    (tmp_path / "d" / "rain-002.png").write_bytes(b"")
    (tmp_path / "d" / "norain-003.png").write_bytes(b"garbage")
    idx = str(tmp_path / "i.json")
    argv = ["data", "prepare", "rain100l", "--split", "train", "--from", str(tmp_path / "d")]
    assert main([*argv, "--index-out", idx]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derain: error: 2 unreadable image file(s)")
    assert "rain-002.png: file is empty" in err and "norain-003.png" in err
    write_png(tmp_path / "d" / "rain-002.png", rgb(12, 16))
    write_png(tmp_path / "d" / "norain-003.png", rgb(13, 16))
    with pytest.raises(PairSizeError, match="rain-003"):
        catalog.prepare("rain100l", tmp_path / "d", split="train", index_out=idx)
    assert not Path(idx).exists()


def test_known_variant_is_complete_not_partial(tmp_path: Path, monkeypatch) -> None:
    from dataclasses import replace

    e = catalog.CATALOG["rain100h"]
    assert 1254 in e.splits["train"].variants  # PReNet's RainTrainH
    small = replace(e.splits["train"], pairs=5, clean=5, variants={2: "the filtered copy"})
    monkeypatch.setitem(catalog.CATALOG, "rain100h", replace(e, splits={"train": small}))
    for i in (1, 4):  # numbers 2, 3, 5 removed, as PReNet removed 546 of RainTrainH's 1800
        _pair(tmp_path / "d" / f"rain-{i}.png", tmp_path / "d" / f"norain-{i}.png")
    rep = catalog.prepare("rain100h", tmp_path / "d", split="train", index_out=tmp_path / "i.json")
    assert not rep.index["partial"] and rep.index["variant"] == "the filtered copy"
    assert "complete as a known variant: the filtered copy" in "\n".join(rep.lines())
    assert json.loads((tmp_path / "i.json").read_text())["variant"] == "the filtered copy"
    (tmp_path / "d" / "norain-4.png").unlink()
    rep = catalog.prepare("rain100h", tmp_path / "d", split="train", index_out=tmp_path / "i.json")
    assert rep.index["partial"] and rep.index["variant"] is None
