"""Data-file lookup and the download helper, served from local bytes (no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from hrsnn.errors import DataFormatError, DataNotFoundError
from hrsnn.tasks import files
from hrsnn.tasks.files import DatasetFiles, RemoteFile, fetch, locate, status


class Response(io.BytesIO):
    def __init__(self, data: bytes, status: int = 200) -> None:
        super().__init__(data)
        self.status = status
        self.headers = {"Content-Length": str(len(data))}


class Server:
    """urlopen stand-in: serves `content[url]`, honours Range requests when `ranges`, records requests."""

    def __init__(self, content: dict[str, bytes], ranges: bool = True) -> None:
        self.content = content
        self.ranges = ranges
        self.requests: list[tuple[str, str | None]] = []

    def __call__(self, request):
        rng = request.get_header("Range")
        self.requests.append((request.full_url, rng))
        data = self.content[request.full_url]
        if rng and self.ranges:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            return Response(data[start:], status=206)
        return Response(data)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def toy(*remote: RemoteFile, folder: str = "toy") -> DatasetFiles:
    return DatasetFiles("toy", folder, remote, "", "https://toy.org")


PAYLOAD = bytes(range(256)) * 40


def test_gunzip_fetch_verifies_and_places_the_file(tmp_path):
    packed = gzip.compress(PAYLOAD)
    ds = toy(RemoteFile("a.bin", "https://x/a.bin.gz", f"md5:{md5(packed)}", "gunzip"))
    paths = fetch(ds, tmp_path, progress=False, opener=Server({"https://x/a.bin.gz": packed}))
    assert paths == (tmp_path / "toy" / "a.bin",)
    assert paths[0].read_bytes() == PAYLOAD
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["a.bin"]  # archive and .part removed
    assert locate(ds, "a.bin", tmp_path) == paths[0]
    server = Server({})
    fetch(ds, tmp_path, progress=False, opener=server)  # present: nothing requested
    assert server.requests == []


def test_interrupted_download_is_resumed_with_a_range_request(tmp_path):
    ds = toy(RemoteFile("b.bin", "https://x/b.bin", f"sha256:{hashlib.sha256(PAYLOAD).hexdigest()}"))
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "b.bin.part").write_bytes(PAYLOAD[:1000])
    server = Server({"https://x/b.bin": PAYLOAD})
    fetch(ds, tmp_path, progress=False, opener=server)
    assert server.requests == [("https://x/b.bin", "bytes=1000-")]
    assert (tmp_path / "toy" / "b.bin").read_bytes() == PAYLOAD


def test_a_server_ignoring_range_restarts_from_zero(tmp_path):
    ds = toy(RemoteFile("b.bin", "https://x/b.bin", f"md5:{md5(PAYLOAD)}"))
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "b.bin.part").write_bytes(b"garbage")
    fetch(ds, tmp_path, progress=False, opener=Server({"https://x/b.bin": PAYLOAD}, ranges=False))
    assert (tmp_path / "toy" / "b.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_download_and_names_both_digests(tmp_path):
    ds = toy(RemoteFile("c.bin", "https://x/c.bin", "md5:" + "0" * 32))
    with pytest.raises(DataFormatError, match=f"md5 {md5(PAYLOAD)} differs from the official 0000"):
        fetch(ds, tmp_path, progress=False, opener=Server({"https://x/c.bin": PAYLOAD}))
    assert list((tmp_path / "toy").iterdir()) == []


def test_checksum_from_the_official_list_and_untar(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("batches/data_1")
        info.size = len(PAYLOAD)
        tar.addfile(info, io.BytesIO(PAYLOAD))
    archive = buf.getvalue()
    listing = f"{'f' * 32}  other.gz\n{md5(archive)}  pack.tar.gz\n".encode()
    ds = toy(RemoteFile("batches", "https://x/pack.tar.gz", "list:https://x/md5sums.txt", "untar"))
    server = Server({"https://x/pack.tar.gz": archive, "https://x/md5sums.txt": listing})
    fetch(ds, tmp_path, progress=False, opener=server)
    assert (tmp_path / "toy" / "batches" / "data_1").read_bytes() == PAYLOAD
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["batches"]


def test_locate_names_every_path_tried_and_the_fetch_command(tmp_path, monkeypatch):
    ds = toy(RemoteFile("d.h5", "https://x/d.h5", "md5:ab"), folder="toyfolder")
    monkeypatch.setenv("HRSNN_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"'d.h5' not found \(tried .*toyfolder/d.h5\); .*hrsnn data fetch toy"):
        locate(ds, "d.h5")
    (tmp_path / "toyfolder").mkdir()
    (tmp_path / "toyfolder" / "d.h5").write_bytes(b"12345")
    (found,) = status(ds)
    assert found.path == tmp_path / "toyfolder" / "d.h5" and found.size == 5


def test_default_roots_end_in_the_user_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("HRSNN_DATA", raising=False)
    monkeypatch.setattr(files, "USER_DATA_DIR", tmp_path / "home-data")
    monkeypatch.chdir(tmp_path)
    roots = files.candidate_roots()
    assert roots[0] == (tmp_path / ".." / "shared" / "data").resolve()
    assert roots[-1] == tmp_path / "home-data"


def test_bad_checksum_spec_is_refused():
    with pytest.raises(Exception, match="checksum"):
        RemoteFile("a", "https://x/a", "crc:12")


def test_downloads_skip_a_read_only_default_root(monkeypatch, tmp_path):
    monkeypatch.delenv("HRSNN_DATA", raising=False)
    monkeypatch.setattr(files, "USER_DATA_DIR", tmp_path / "home-data")
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "shared")  # ../shared/data from here is `shared`
    monkeypatch.setattr(files, "_repo_data_candidate", lambda: None)
    assert files.download_root() == shared.resolve()
    writable = files.os.access
    monkeypatch.setattr(files.os, "access", lambda p, mode: False if p == shared.resolve() else writable(p, mode))
    assert files.download_root() == tmp_path / "home-data"
