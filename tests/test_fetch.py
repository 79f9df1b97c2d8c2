"""derain fetch: downloads through DERAIN_MIRROR from a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from derain_lib.cli import main
from derain_lib.data import catalog
from derain_lib.data.catalog import dataset_items, prepared_dataset
from derain_lib.data.fetch import FetchError, Item, Tree, fetch_items
from derain_lib.weights import find_released, weight_items

TREE = Tree("someone", "somerepo", "0" * 40)


class Mirror:
    """A raw-file mirror: serves ``files`` (URL path -> bytes); ``truncate`` paths send their
    full Content-Length but only half the body, then close. Stops when the test ends."""

    def __init__(self, files: dict[str, bytes], truncate: tuple[str, ...] = ()) -> None:
        self.files, self.truncate, self.requests = files, truncate, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in mirror.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(monkeypatch, tmp_path):
    """Start a mirror of the given files and point DERAIN_MIRROR and the caches at it."""
    started = []
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "data"))

    def start(files: dict[str, bytes], truncate: tuple[str, ...] = ()) -> Mirror:
        m = Mirror(files, truncate)
        started.append(m)
        monkeypatch.setenv("DERAIN_MIRROR", m.url)
        return m

    yield start
    for m in started:
        m.stop()


def _url_path(it: Item) -> str:
    return f"/{it.tree.owner}/{it.tree.repo}/{it.tree.commit}/{it.path}"


def _item(local: str, body: bytes) -> Item:
    return Item(TREE, f"files/{local}", hashlib.sha256(body).hexdigest(), local)


def test_urls_have_the_raw_file_form(monkeypatch):
    monkeypatch.delenv("DERAIN_MIRROR", raising=False)
    sian = next(i for i in weight_items() if i.local == "sian_rain100l.pth")
    assert sian.tree.url(sian.path) == (
        "https://raw.githubusercontent.com/pangbo1997/RainRemoval/"
        "7efca61767f454e7ef9d4c562520b874aacce9ac/pretrained_models/rain100l.pth"
    )
    l100 = {i.local: i.path for i in dataset_items("rain100l")}
    assert l100["rainy/rain-007.png"] == "datasets/test/Rain100L/rainy/rain-007.png"
    assert l100["norain/norain-007.png"] == "datasets/test/Rain100L/norain-007.png"
    h100 = {i.local: i for i in dataset_items("rain100h-crop480")}
    assert len(h100) == 200
    assert h100["rainy/rain-012.png"].path == "model/test/test_data/R100H/inputcrop/12.png"
    assert h100["norain/norain-012.png"].path == "model/test/test_data/R100H/cleancrop/12.png"
    assert h100["norain/norain-012.png"].tree.url("x", "http://m/") == (
        "http://m/kuijiang94/MSPFN/26e6073b163ac4f087d6c57bf55eba7ed20751d7/x"
    )


def test_verified_download_of_real_files_then_the_cache_is_reused(serve, tmp_path, shared):
    """The four Rain100L sample pairs served as the fork's tree: fetched, sha256 as in the
    manifest; a second run downloads nothing (one GET per file in all)."""
    sample = shared / "data" / "rain100l_sample"
    items = [
        i for i in dataset_items("rain100l") if (sample / i.local).is_file()
    ]  # the manifest names the sample's files as rainy/rain-NNN.png, norain/norain-NNN.png
    assert len(items) == 8
    mirror = serve({_url_path(i): (sample / i.local).read_bytes() for i in items})
    dest = tmp_path / "got"
    assert fetch_items(items, dest, log=lambda s: None) == 8
    for i in items:
        assert hashlib.sha256((dest / i.local).read_bytes()).hexdigest() == i.sha256
    assert fetch_items(items, dest, log=lambda s: None) == 0
    assert len(mirror.requests) == 8


def test_fetch_weights_cli_then_found_by_the_registry(serve, shared, capsys):
    items = weight_items()
    mirror = serve({_url_path(i): (shared / "weights" / i.local).read_bytes() for i in items})
    assert main(["fetch", "weights"]) == 0
    assert "weights: 6 downloaded, all 6 verified" in capsys.readouterr().out
    assert find_released("sian-rain100h") is not None
    assert main(["fetch", "weights"]) == 0  # from the cache: no new request
    assert "weights: 0 downloaded" in capsys.readouterr().out
    assert len(mirror.requests) == 6


def test_a_corrupted_byte_is_rejected_naming_the_file(serve, tmp_path):
    good = b"some image bytes" * 100
    it = _item("rainy/rain-001.png", good)
    bad = bytearray(good)
    bad[500] ^= 0x01
    serve({_url_path(it): bytes(bad)})
    dest = tmp_path / "got"
    with pytest.raises(FetchError, match=r"rain-001\.png.*does not match its registered sha256"):
        fetch_items([it], dest, log=lambda s: None)
    assert not (dest / it.local).exists()
    assert list((dest / "rainy").iterdir()) == []  # no temporary file left either


def test_an_interrupted_download_leaves_no_final_file(serve, tmp_path):
    first, second = b"a" * 5000, b"b" * 200_000
    items = [_item("a.png", first), _item("b.png", second)]
    serve(
        {_url_path(i): b for i, b in zip(items, (first, second), strict=True)},
        truncate=(_url_path(items[1]),),
    )
    dest = tmp_path / "got"
    with pytest.raises(FetchError, match=r"b\.png"):
        fetch_items(items, dest, log=lambda s: None)
    assert (dest / "a.png").read_bytes() == first
    assert sorted(p.name for p in dest.iterdir()) == ["a.png"]


def test_offline_refuses_naming_the_mirror_unless_stand_ins_are_asked_for(
    monkeypatch, tmp_path, capsys
):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DERAIN_MIRROR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "cache"))
    assert main(["fetch", "all"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"derain: error: offline: http://127.0.0.1:{port}/")
    assert "DERAIN_MIRROR" in line and "--stand-ins" in line
    assert main(["fetch", "all", "--stand-ins"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].endswith("; going on with the embedded stand-ins (--stand-ins)")
    assert not any(Path(tmp_path / "cache").rglob("*.pth"))
    assert main(["fetch", "rain100l", "--stand-ins"]) == 0
    assert "rain100l: " not in capsys.readouterr().out  # nothing fetched


def test_unknown_target_is_one_clear_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["fetch", "rain99"])
    assert e.value.code == 2
    assert "invalid choice: 'rain99'" in capsys.readouterr().err


def test_a_fetched_test_set_is_indexed_as_its_benchmark(serve, shared, monkeypatch, capsys):
    """The fetched files are verified and indexed so that the pipeline finds them (here the
    four sample pairs stand for the 100 of the manifest: a partial set)."""
    sample = shared / "data" / "rain100l_sample"
    items = [i for i in dataset_items("rain100l") if (sample / i.local).is_file()]
    monkeypatch.setattr(catalog, "dataset_items", lambda name: items)
    serve({_url_path(i): (sample / i.local).read_bytes() for i in items})
    assert main(["fetch", "rain100l"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("rain100l: 8 downloaded, 8 files verified")
    assert "indexed as the rain100l test set (4 pairs)" in line
    found = Path(prepared_dataset("rain100l", "test").root).resolve()
    assert found == catalog.dataset_dir("rain100l").resolve()


def _local_mirror(root: Path, items: list[Item], bodies: list[bytes]) -> Path:
    """A folder laid out as the raw host: {owner}/{repo}/{commit}/{path}."""
    for it, body in zip(items, bodies, strict=True):
        f = root / it.tree.owner / it.tree.repo / it.tree.commit / it.path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(body)
    return root


@pytest.mark.parametrize("form", ["folder", "file-url"])
def test_a_local_folder_or_file_url_is_a_mirror(form, monkeypatch, tmp_path):
    bodies = [b"first" * 300, b"second" * 300]
    items = [_item("rainy/rain-001.png", bodies[0]), _item("with space/b.png", bodies[1])]
    root = _local_mirror(tmp_path / "my mirror", items, bodies)
    monkeypatch.setenv("DERAIN_MIRROR", str(root) if form == "folder" else root.as_uri())
    dest = tmp_path / "got"
    assert fetch_items(items, dest, log=lambda s: None) == 2
    assert [(dest / i.local).read_bytes() for i in items] == bodies
    assert fetch_items(items, dest, log=lambda s: None) == 0  # kept: already verified
    (root / TREE.owner / TREE.repo / TREE.commit / items[0].path).write_bytes(b"tampered")
    (dest / items[0].local).unlink()
    with pytest.raises(FetchError, match=r"rain-001\.png: .* does not match its registered sha256"):
        fetch_items(items, dest, log=lambda s: None)
    assert not (dest / items[0].local).exists()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ftp://example.org/mirror", "unsupported URL scheme 'ftp'"),
        ("/no/such/mirror", "no such folder"),
        ("file:///no/such/mirror", "no such folder"),
    ],
)
def test_a_refused_mirror_says_why(value, reason, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DERAIN_MIRROR", value)
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FetchError, match=reason) as e:
        fetch_items([_item("a.png", b"x")], tmp_path / "got", log=lambda s: None)
    assert "sha256" not in str(e.value)  # not the old "does not match its registered sha256"
    assert main(["fetch", "weights"]) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err


def test_the_shared_mirror_folder_gives_the_full_test_sets(monkeypatch, tmp_path, shared):
    """../shared/mirror as DERAIN_MIRROR: the first files of both sets, verified (the full
    fetch copies 400 files; two per set are enough to see the tree paths are right)."""
    monkeypatch.setenv("DERAIN_MIRROR", str(shared / "mirror"))
    for name in ("rain100l", "rain100h-crop480"):
        items = dataset_items(name)[:2]
        assert fetch_items(items, tmp_path / name, log=lambda s: None) == 2


def _jpeg(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    px = np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="JPEG")
    return buf.getvalue()


def test_rain1400_comes_from_the_lfs_layout_with_spaces(monkeypatch, tmp_path, capsys):
    """Generated files in the media host's layout (paths with spaces) and a manifest made for
    them: fetched, verified, laid out as the catalog's rain1400 (rainy_image/, ground_truth/)
    and indexed as the Rain1400 test set."""
    names = ["ground truth/901.jpg", "ground truth/902.jpg"]
    names += [f"rainy image/{n}_{k}.jpg" for n in (901, 902) for k in range(1, 15)]
    bodies = {n: _jpeg(i) for i, n in enumerate(names)}
    manifest = {n: hashlib.sha256(b).hexdigest() for n, b in bodies.items()}
    real = catalog.load_manifest
    monkeypatch.setattr(
        catalog, "load_manifest", lambda f: manifest if f == "rain1400_test.sha256" else real(f)
    )
    items = dataset_items("rain1400")
    assert items[0].tree.url(items[0].path, "https://h") == (
        "https://h/jinnovation/rainy-image-dataset/ef1db51945834188d1626d73e322a9b9f3508177/"
        "ground%20truth/901.jpg"
    )
    monkeypatch.delenv("DERAIN_MIRROR", raising=False)
    assert items[0].tree.url(items[0].path).startswith("https://media.githubusercontent.com/media/")
    root = _local_mirror(tmp_path / "mirror", items, [bodies[i.path] for i in items])
    monkeypatch.setenv("DERAIN_MIRROR", str(root))
    monkeypatch.setenv("DERAIN_DATA", str(tmp_path / "data"))
    assert main(["fetch", "rain1400"]) == 0
    out = capsys.readouterr().out
    assert "rain1400: 30 downloaded, 30 files verified" in out
    assert "indexed as the rain1400 test set (28 pairs)" in out
    dest = catalog.dataset_dir("rain1400")
    assert (dest / "rainy_image" / "902_14.jpg").read_bytes() == bodies["rainy image/902_14.jpg"]
    assert Path(prepared_dataset("rain1400", "test").root).resolve() == dest.resolve()


def test_the_packaged_rain1400_manifest_is_the_shared_one(shared):
    items = dataset_items("rain1400")
    assert len(items) == 1500
    text = (shared / "data" / "manifests" / "rain1400_test.sha256").read_text()
    shipped = dict(line.split("  ", 1)[::-1] for line in text.splitlines() if line.strip())
    assert {i.path: i.sha256 for i in items} == shipped
    assert items[0].tree.commit == "ef1db51945834188d1626d73e322a9b9f3508177"
