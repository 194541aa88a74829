"""The published data set: manifest, download from a local server, verification, safe extraction."""

from __future__ import annotations

import hashlib
import io
import socket
import stat
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from qtransfer.data.hymenoptera import (
    HYMENOPTERA_URL,
    URL_ENV,
    ensure_hymenoptera,
    hymenoptera_paths,
    load_manifest,
    verify_tree,
)
from qtransfer.errors import DataError, DownloadError, UsageError


def _jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="JPEG")
    return buf.getvalue()


FILES = {
    "train/ants/a1.jpg": _jpeg((200, 0, 0)),
    "train/ants/a 2 é.jpg": _jpeg((210, 0, 0)),
    "train/bees/b1.jpg": _jpeg((0, 0, 200)),
    "train/bees/b2.jpg": _jpeg((0, 0, 210)),
    "val/ants/a3.jpg": _jpeg((190, 0, 0)),
    "val/bees/b3.jpg": _jpeg((0, 0, 190)),
}
MANIFEST = {rel: hashlib.sha256(blob).hexdigest() for rel, blob in FILES.items()}


def build_zip(files=FILES, prefix="hymenoptera_data/", extra=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(prefix, b"") if prefix else None
        for rel, blob in files.items():
            z.writestr(prefix + rel, blob)
        for info, blob in extra:
            z.writestr(info, blob)
    return buf.getvalue()


class Server:
    """A local HTTP server in a thread; ``routes`` maps a path to (status, body, headers)."""

    def __init__(self):
        self.routes: dict[str, tuple[int, bytes, dict]] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                status, body, headers = outer.routes.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                headers = {"Content-Length": str(len(body)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, headers=None) -> str:
        self.routes[path] = (status, body, headers or {})
        return self.url(path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv(URL_ENV, raising=False)
    return tmp_path / "cache"


def _unused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hymenoptera_data.zip"


def _leftovers(cache: Path) -> list[str]:
    datasets = cache / "datasets"
    return sorted(p.name for p in datasets.iterdir()) if datasets.exists() else []


# ------------------------------------------------------------------ manifest


def test_packaged_manifest_has_398_train_and_val_files():
    manifest = load_manifest()
    assert len(manifest) == 398
    folders = {rel.rsplit("/", 1)[0] for rel in manifest}
    assert folders == {"train/ants", "train/bees", "val/ants", "val/bees"}
    assert sum(rel.startswith("train/") for rel in manifest) == 245
    assert all(len(h) == 64 for h in manifest.values())


def test_packaged_manifest_equals_the_shared_one(shared_manifest):
    assert load_manifest() == load_manifest(shared_manifest)


def test_shared_train_files_match_the_manifest(shared_train):
    manifest = load_manifest()
    on_disk = {p.relative_to(shared_train).as_posix(): p for p in shared_train.rglob("*") if p.is_file()}
    assert {f"train/{rel}" for rel in on_disk} == {rel for rel in manifest if rel.startswith("train/")}
    for rel, path in on_disk.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest[f"train/{rel}"], rel
    train_only = {rel[len("train/"):]: h for rel, h in manifest.items() if rel.startswith("train/")}
    assert verify_tree(shared_train, train_only) == []


def test_manifest_formats_and_errors(tmp_path):
    good = tmp_path / "SUMS"
    h = "ab" * 32
    good.write_text(f"# comment\n\n{h}  ./train/a.jpg\n{h.upper()} *val/b c.jpg\n")
    assert load_manifest(good) == {"train/a.jpg": h, "val/b c.jpg": h}
    bad = tmp_path / "BAD"
    bad.write_text(f"{h}  ./a.jpg\nxyz  ./b.jpg\n")
    with pytest.raises(DataError, match="line 2 of .*BAD"):
        load_manifest(bad)
    evil = tmp_path / "EVIL"
    evil.write_text(f"{h}  ../../etc/passwd\n")
    with pytest.raises(DataError, match="unsafe path"):
        load_manifest(evil)
    with pytest.raises(DataError, match="cannot read manifest"):
        load_manifest(tmp_path / "missing")


def test_verify_tree_reports_missing_and_changed_files(tmp_path):
    for rel, blob in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(blob)
    assert verify_tree(tmp_path, MANIFEST) == []
    (tmp_path / "val/ants/a3.jpg").unlink()
    (tmp_path / "train/bees/b1.jpg").write_bytes(b"changed")
    problems = verify_tree(tmp_path, MANIFEST)
    assert len(problems) == 2
    assert any("val/ants/a3.jpg: missing" in p for p in problems)
    assert any("train/bees/b1.jpg: sha256" in p for p in problems)


# ------------------------------------------------------------------ download and extraction


def test_download_verify_extract_then_use_the_cache(server, cache):
    url = server.serve("/h.zip", build_zip(extra=[(zipfile.ZipInfo("hymenoptera_data/README"), b"hi")]))
    root = ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=False)
    target, zip_path = hymenoptera_paths(cache)
    assert root == target == cache / "datasets" / "hymenoptera_data"
    assert zip_path.exists()
    assert verify_tree(root, MANIFEST) == []
    assert sorted(p.name for p in root.iterdir()) == ["train", "val"]  # README not extracted
    assert server.hits == ["/h.zip"]
    assert _leftovers(cache) == ["hymenoptera_data", "hymenoptera_data.zip"]
    # second call: no network at all
    server.close()
    assert ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=False) == root
    assert server.hits == ["/h.zip"]


def test_discover_uses_the_downloaded_tree(server, cache, monkeypatch):
    from qtransfer.data import discover as data_mod
    import qtransfer.data.hymenoptera as dl

    url = server.serve("/h.zip", build_zip())
    monkeypatch.setenv(URL_ENV, url)  # the URL can come from the environment
    monkeypatch.setattr(dl, "load_manifest", lambda path=None: MANIFEST)
    found = data_mod.discover("hymenoptera", cache_dir=cache)
    assert found.classes == ("ants", "bees")
    assert {k: len(v) for k, v in found.splits.items()} == {"train": 4, "val": 2}
    assert server.hits == ["/h.zip"]


def test_zip_without_top_folder_and_progress_bar(server, cache, capsys):
    url = server.serve("/flat.zip", build_zip(prefix=""))
    root = ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=True)
    assert verify_tree(root, MANIFEST) == []


def test_zip_placed_by_hand_is_used_offline(cache):
    _, zip_path = hymenoptera_paths(cache)
    zip_path.parent.mkdir(parents=True)
    zip_path.write_bytes(build_zip())
    root = ensure_hymenoptera(cache, url=_unused_url(), manifest=MANIFEST, download=False)
    assert verify_tree(root, MANIFEST) == []


def test_extracted_folder_placed_by_hand_is_used_offline(cache):
    target, _ = hymenoptera_paths(cache)
    for rel, blob in FILES.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(blob)
    assert ensure_hymenoptera(cache, manifest=MANIFEST, download=False) == target


def test_train_split_alone_placed_by_hand_is_used_with_a_warning(cache):
    """Only train/ placed (the val split withheld): used, verified, and the user is told what it means."""
    target, _ = hymenoptera_paths(cache)
    for rel, blob in FILES.items():
        if rel.startswith("train/"):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_bytes(blob)
    with pytest.warns(UserWarning, match="no val/ folder: a validation split is drawn from train"):
        assert ensure_hymenoptera(cache, manifest=MANIFEST, download=False) == target
    (target / "train/ants/a1.jpg").write_bytes(b"changed")
    with pytest.raises(DownloadError, match="train/ants/a1.jpg: sha256"):
        ensure_hymenoptera(cache, manifest=MANIFEST, download=False)
    (target / "train").rename(target / "elsewhere")
    with pytest.raises(DownloadError, match="train/ants/a1.jpg: missing"):
        ensure_hymenoptera(cache, manifest=MANIFEST, download=False)


def test_damaged_extracted_folder_is_reported_not_deleted(cache):
    target, _ = hymenoptera_paths(cache)
    for rel, blob in FILES.items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(blob)
    (target / "val/bees/b3.jpg").unlink()
    with pytest.raises(DownloadError, match="not the verified .*val/bees/b3.jpg: missing.*Delete that folder"):
        ensure_hymenoptera(cache, manifest=MANIFEST, download=False)
    assert (target / "train/ants/a1.jpg").exists()


def test_cache_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("QTRANSFER_CACHE", str(tmp_path / "envcache"))
    url = server.serve("/h.zip", build_zip())
    root = ensure_hymenoptera(url=url, manifest=MANIFEST, progress=False)
    assert root == tmp_path / "envcache" / "datasets" / "hymenoptera_data"


# ------------------------------------------------------------------ refused archives


def _refused(server, cache, body: bytes, match: str) -> str:
    url = server.serve("/bad.zip", body)
    with pytest.raises(DownloadError, match=match) as info:
        ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=False)
    assert "deleted" in str(info.value)
    assert _leftovers(cache) == []  # no zip, no half-extracted folder, no temp files
    return str(info.value)


def test_checksum_mismatch_is_refused_and_zip_deleted(server, cache):
    files = dict(FILES, **{"train/bees/b2.jpg": _jpeg((1, 2, 3))})
    msg = _refused(server, cache, build_zip(files), "checksum mismatch for train/bees/b2.jpg")
    assert "Run again" in msg


def test_missing_manifest_file_is_refused(server, cache):
    files = {k: v for k, v in FILES.items() if k != "val/ants/a3.jpg"}
    _refused(server, cache, build_zip(files), "1 file.* not in it .*val/ants/a3.jpg")


def test_parent_directory_member_is_refused(server, cache, tmp_path):
    body = build_zip(extra=[(zipfile.ZipInfo("hymenoptera_data/../../evil.txt"), b"owned")])
    _refused(server, cache, body, r"unsafe path \('\.\.' component\)")
    assert not list(tmp_path.rglob("evil.txt"))


def test_absolute_member_is_refused(server, cache, tmp_path):
    info = zipfile.ZipInfo("x")
    info.filename = str(tmp_path / "abs-evil.txt")  # bypass ZipInfo's own clean-up
    _refused(server, cache, build_zip(extra=[(info, b"owned")]), "absolute path")
    assert not (tmp_path / "abs-evil.txt").exists()


def test_windows_absolute_member_is_refused(server, cache):
    info = zipfile.ZipInfo("x")
    info.filename = "C:/evil.txt"
    _refused(server, cache, build_zip(extra=[(info, b"owned")]), "absolute path")


def test_symlink_member_is_refused(server, cache):
    info = zipfile.ZipInfo("hymenoptera_data/train/ants/link.jpg")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    _refused(server, cache, build_zip(extra=[(info, b"/etc/passwd")]), "is a symlink")


def test_not_a_zip_is_refused(server, cache):
    _refused(server, cache, b"<html>captive portal</html>", "not a readable zip")


# ------------------------------------------------------------------ network failures


def _offline_checks(msg: str, url: str, cache: Path) -> None:
    target, zip_path = hymenoptera_paths(cache)
    assert url in msg
    assert str(zip_path) in msg
    assert str(target) in msg
    assert "--data DIR" in msg and "../shared/data/hymenoptera_train" in msg


def test_unreachable_server_gives_an_actionable_message(cache):
    url = _unused_url()
    with pytest.raises(DownloadError) as info:
        ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=False)
    _offline_checks(str(info.value), url, cache)
    assert info.value.exit_code == 4
    assert _leftovers(cache) == []


def test_download_disabled(cache):
    with pytest.raises(DownloadError, match="downloading is disabled") as info:
        ensure_hymenoptera(cache, manifest=MANIFEST, download=False)
    _offline_checks(str(info.value), HYMENOPTERA_URL, cache)


def test_http_error(server, cache):
    url = server.url("/missing.zip")
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=False)
    _offline_checks(str(info.value), url, cache)
    assert _leftovers(cache) == []


def test_connection_cut_leaves_no_half_file(server, cache):
    body = build_zip()
    url = server.serve("/cut.zip", body[: len(body) // 2], headers={"Content-Length": str(len(body))})
    with pytest.raises(DownloadError, match="connection") as info:
        ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=False)
    _offline_checks(str(info.value), url, cache)
    assert _leftovers(cache) == []


def test_file_url_and_bad_scheme(tmp_path, cache):
    z = tmp_path / "mirror.zip"
    z.write_bytes(build_zip())
    assert verify_tree(ensure_hymenoptera(cache, url=z.as_uri(), manifest=MANIFEST, progress=False), MANIFEST) == []
    with pytest.raises(UsageError, match="must start with https://"):
        ensure_hymenoptera(tmp_path / "other", url="ftp://example.org/h.zip", manifest=MANIFEST)


def test_a_server_that_never_answers_times_out_with_the_offline_message(cache, monkeypatch):
    """The reason the download is our own: torch.hub.download_url_to_file has no timeout and would wait forever."""
    import time

    import qtransfer.data.hymenoptera as hymenoptera

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # the connection is accepted by the kernel; nothing is ever sent back
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hymenoptera_data.zip"
    monkeypatch.setattr(hymenoptera, "_TIMEOUT_S", 1.0)
    t0 = time.monotonic()
    try:
        with pytest.raises(DownloadError) as info:
            ensure_hymenoptera(cache, url=url, manifest=MANIFEST, progress=False)
    finally:
        listener.close()
    assert time.monotonic() - t0 < 15
    _offline_checks(str(info.value), url, cache)
    assert _leftovers(cache) == []
