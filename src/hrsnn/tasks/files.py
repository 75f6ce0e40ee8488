"""Data files on disk: where each data set's files are looked for, whether they are there, and a download helper.

Every file-based data set declares a :class:`DatasetFiles`: its folder under the data root and its
:class:`RemoteFile` entries (file name, official URL, checksum, how to unpack). Loaders find their files with
:func:`locate`, which looks in the ``data_dir`` argument, else ``$HRSNN_DATA``, else the default folders of
:func:`candidate_roots` (``../shared/data`` and ``~/.hrsnn/data``, where :func:`fetch` puts files by default).

:func:`fetch` downloads what is missing (for users who are online; tests never call it over the network): to a
``.part`` file that a later call resumes with an HTTP range request, then verifies the checksum (a fixed MD5 or
SHA-256, or the digest listed in the data set's official checksum file), unpacks (gunzip or tar) and renames into
place atomically, so an interrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError

__all__ = [
    "DATA_ENV_VAR",
    "USER_DATA_DIR",
    "DatasetFiles",
    "FileStatus",
    "RemoteFile",
    "candidate_roots",
    "download_root",
    "fetch",
    "file_digest",
    "locate",
    "status",
]

DATA_ENV_VAR = "HRSNN_DATA"
"""Environment variable naming the data root (the folder that holds ``qtdb/``, ``shd/``, ...)."""

USER_DATA_DIR = Path("~") / ".hrsnn" / "data"
"""Default download folder when neither ``--data-dir`` nor ``$HRSNN_DATA`` is given (also searched, last)."""

Unpack = Literal["none", "gunzip", "untar"]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set as it lies on disk, and where it comes from.

    Attributes:
        name: path of the file (or, for ``unpack="untar"``, of the folder the archive unpacks to) inside the data
            set's folder, e.g. ``"shd_train.h5"``.
        url: official download URL.
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"`` of the downloaded (still packed) file; or ``"list:<url>"``,
            a checksum file in ``md5sum`` format (``<md5>  <file name>`` per line) published by the data set's
            authors, read at download time.
        unpack: ``"none"``, ``"gunzip"`` (the download is ``name + ".gz"``) or ``"untar"`` (a tar archive that
            holds ``name``).
        size: approximate size on disk in bytes once unpacked (shown by ``hrsnn data list``), or None.
    """

    name: str
    url: str
    checksum: str
    unpack: Unpack = "none"
    size: int | None = None

    def __post_init__(self) -> None:
        kind, _, value = self.checksum.partition(":")
        if kind not in ("md5", "sha256", "list") or not value:
            raise ConfigError("checksum", self.checksum, "must be 'md5:<hex>', 'sha256:<hex>' or 'list:<url>'")
        if self.unpack not in ("none", "gunzip", "untar"):
            raise ConfigError("unpack", self.unpack, "must be 'none', 'gunzip' or 'untar'")

    @property
    def download_name(self) -> str:
        """File name of the download itself (the URL's last path component)."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetFiles:
    """The files of one data set under ``<data root>/<folder>/``.

    Attributes:
        name: data set name (``hrsnn data fetch NAME``).
        folder: sub-folder of the data root that holds the files.
        files: the files; ``required`` ones must all be present for the loader.
        description: one line for ``hrsnn data list``.
        homepage: where the data set is documented (licence, citation).
    """

    name: str
    folder: str
    files: tuple[RemoteFile, ...]
    description: str
    homepage: str


@dataclass(frozen=True)
class FileStatus:
    """Where one file of a data set was looked for and what was found (``hrsnn data list``)."""

    dataset: str
    name: str
    path: Path | None
    size: int | None
    tried: tuple[Path, ...]

    @property
    def present(self) -> bool:
        """Whether the file (or unpacked folder) exists."""
        return self.path is not None


def _repo_data_candidate() -> Path | None:
    """``../shared/data`` next to the repository of an editable install (``src/hrsnn/tasks/`` is three levels
    below the repository root), or None when this file does not lie that deep."""
    parents = Path(__file__).resolve().parents
    if len(parents) <= 3:
        return None
    return parents[3] / ".." / "shared" / "data"


def candidate_roots(data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, ...]:
    """Data roots to search, in order (the one definition of that order, also used by
    :func:`hrsnn.tasks.base.resolve_data_dir`).

    ``data_dir`` alone when given; else ``$HRSNN_DATA`` alone when set and non-empty; else the default roots
    ``../shared/data`` from the current folder, ``../shared/data`` from the repository of an editable install
    (when different) and ``~/.hrsnn/data`` (:data:`USER_DATA_DIR`, where :func:`fetch` writes by default).
    Roots that do not exist are kept (so errors can list them).

    Raises:
        ConfigError: naming ``data_dir`` when it is not a non-empty path.
    """
    if data_dir is not None:
        if not isinstance(data_dir, str | os.PathLike) or str(data_dir) == "":
            raise ConfigError("data_dir", data_dir, "must be a non-empty path (str or os.PathLike)")
        return (Path(data_dir).expanduser().absolute(),)
    env = os.environ.get(DATA_ENV_VAR, "")
    if env:
        return (Path(env).expanduser().absolute(),)
    roots = [(Path.cwd() / ".." / "shared" / "data").resolve()]
    repo = _repo_data_candidate()
    if repo is not None and repo.resolve() not in roots:
        roots.append(repo.resolve())
    roots.append(USER_DATA_DIR.expanduser().absolute())
    return tuple(roots)


def download_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`fetch` writes: ``data_dir``, else ``$HRSNN_DATA``, else the first existing default root that
    this user may write to (a shared read-only ``../shared/data`` is skipped), else ``~/.hrsnn/data``."""
    roots = candidate_roots(data_dir)
    if len(roots) == 1:
        return roots[0]
    for root in roots[:-1]:
        if root.is_dir() and os.access(root, os.W_OK):
            return root
    return roots[-1]


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def status(dataset: DatasetFiles, data_dir: str | os.PathLike[str] | None = None) -> tuple[FileStatus, ...]:
    """Look for each file of ``dataset`` in every candidate root (first hit wins)."""
    roots = candidate_roots(data_dir)
    out = []
    for remote in dataset.files:
        tried = tuple(root / dataset.folder / remote.name for root in roots)
        hit = next((p for p in tried if p.exists()), None)
        out.append(FileStatus(dataset.name, remote.name, hit, None if hit is None else _size(hit), tried))
    return tuple(out)


def locate(dataset: DatasetFiles, name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the file ``name`` of ``dataset``.

    Raises:
        ConfigError: when ``name`` is not one of the data set's files.
        DataNotFoundError: naming every path tried and how to get the file (``hrsnn data fetch``, ``--data-dir``,
            ``$HRSNN_DATA``).
    """
    for found in status(dataset, data_dir):
        if found.name != name:
            continue
        if found.path is not None:
            return found.path
        tried = ", ".join(str(p) for p in found.tried)
        raise DataNotFoundError(
            f"{dataset.name} file {name!r} not found (tried {tried}); download it with `hrsnn data fetch "
            f"{dataset.name}` (from {dataset.homepage}), or point --data-dir (data_dir= in Python) or "
            f"${DATA_ENV_VAR} to the folder that holds {dataset.folder}/{name}"
        )
    raise ConfigError("name", name, f"is not a file of {dataset.name}: {[f.name for f in dataset.files]}")


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file (``"md5"`` or ``"sha256"``), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


Opener = Callable[[urllib.request.Request], object]


def _expected_digest(remote: RemoteFile, opener: Opener) -> tuple[str, str]:
    """(algorithm, hex digest) the download of ``remote`` must have."""
    kind, _, value = remote.checksum.partition(":")
    if kind != "list":
        return kind, value.lower()
    with opener(urllib.request.Request(value)) as response:  # type: ignore[attr-defined]
        text = response.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == remote.download_name:
            return "md5", parts[0].lower()
    raise DataFormatError("checksum list", value, f"does not list {remote.download_name}")


def _download(url: str, part: Path, opener: Opener, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (an HTTP range request when ``part`` already holds bytes)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with opener(request) as response:  # type: ignore[attr-defined]
        resumed = have > 0 and getattr(response, "status", 200) == 206
        total = response.headers.get("Content-Length")
        total_bytes = (int(total) + (have if resumed else 0)) if total else None
        mode = "ab" if resumed else "wb"
        done = have if resumed else 0
        with part.open(mode) as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    shown = f"{done / 2**20:.1f}" + (f"/{total_bytes / 2**20:.1f}" if total_bytes else "")
                    print(f"\r  {part.name[:-5]}: {shown} MiB", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)


def _unpack(remote: RemoteFile, archive: Path, target: Path) -> None:
    """Unpack ``archive`` so that ``target`` appears atomically (a temporary sibling renamed into place)."""
    tmp = target.with_name(target.name + ".unpacking")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    try:
        if remote.unpack == "gunzip":
            with gzip.open(archive, "rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        elif remote.unpack == "untar":
            tmp.mkdir()
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            inner = tmp / remote.name
            if not inner.exists():
                raise DataFormatError("archive", str(archive), f"does not hold {remote.name}")
            inner.rename(target)
            shutil.rmtree(tmp)
            return
        tmp.replace(target)
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise DataFormatError("archive", str(archive), f"cannot be unpacked: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def fetch(
    dataset: DatasetFiles,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    opener: Opener = urllib.request.urlopen,
) -> tuple[Path, ...]:
    """Download, verify and unpack every missing file of ``dataset`` into ``download_root(data_dir)/<folder>``.

    Present files are left alone. A partial download (``<file>.part``) is resumed. A checksum mismatch deletes the
    download and raises, naming the file and both digests.

    Args:
        dataset: what to fetch.
        data_dir: the data root (see :func:`download_root`).
        progress: print MiB received to stderr.
        opener: ``urllib.request.urlopen`` or a stand-in with its interface (tests serve local files).

    Returns:
        The paths of all the data set's files.

    Raises:
        DataFormatError: checksum mismatch, or an archive that cannot be unpacked.
        OSError: the download itself failed (no network, HTTP error).
    """
    folder = download_root(data_dir) / dataset.folder
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in dataset.files:
        target = folder / remote.name
        paths.append(target)
        if target.exists():
            continue
        archive = target if remote.unpack == "none" else folder / remote.download_name
        if not (archive.exists() and archive != target):
            part = archive.with_name(archive.name + ".part")
            algorithm, expected = _expected_digest(remote, opener)
            _download(remote.url, part, opener, progress)
            got = file_digest(part, algorithm)
            if got != expected:
                part.unlink()
                raise DataFormatError(
                    f"{dataset.name} download", remote.url, f"{algorithm} {got} differs from the official {expected}"
                )
            part.replace(archive)
        if remote.unpack != "none":
            _unpack(remote, archive, target)
            archive.unlink()
    return tuple(paths)
