"""The published Hymenoptera (ants vs bees) data set: find it in the cache, or download,
verify and extract it.

Every file is checked against the sha256 manifest shipped with qtransfer
(``hymenoptera_data.SHA256SUMS``, 398 files in ``train/`` and ``val/``); a zip that does
not match is deleted and refused. Extraction is safe (no absolute paths, no ``..``, no
symlinks; only manifest files) and atomic (a temporary folder renamed into place), and a
download goes to a temporary file renamed into place, so an interrupted run never leaves
a half file where a complete one is expected.

Example:
    >>> root = ensure_hymenoptera()          # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())  # doctest: +SKIP
    ['train', 'val']
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from qtransfer.errors import DataError, DownloadError, UsageError
from qtransfer.paths import cache_dir as _cache_dir, sha256_file

__all__ = [
    "HYMENOPTERA_URL",
    "URL_ENV",
    "load_manifest",
    "ensure_hymenoptera",
    "verify_tree",
    "hymenoptera_paths",
]

HYMENOPTERA_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
#: environment variable overriding the download URL (a mirror, or a local server in tests).
URL_ENV = "QTRANSFER_HYMENOPTERA_URL"

_MANIFEST_NAME = "hymenoptera_data.SHA256SUMS"
_FOLDER = "hymenoptera_data"
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0
_MAX_MEMBER_BYTES = 64 << 20  # no photo in the set is near this; refuses zip bombs early
_OFFLINE_EXAMPLE = "../shared/data/hymenoptera_train"


def hymenoptera_paths(cache_dir: Path | None = None) -> tuple[Path, Path]:
    """``(extracted_folder, zip_path)`` in the cache: ``<cache>/datasets/hymenoptera_data[.zip]``."""
    datasets = _cache_dir(cache_dir) / "datasets"
    return datasets / _FOLDER, datasets / f"{_FOLDER}.zip"


def load_manifest(path: Path | None = None) -> dict[str, str]:
    """Read a ``sha256sum`` manifest into ``{"train/ants/x.jpg": "<64 hex>"}``.

    ``path=None`` reads the manifest packaged with qtransfer. Lines are ``HEX  ./rel/path``
    (``./`` and a binary-mode ``*`` are optional); blank lines and ``#`` comments are skipped.

    Example:
        >>> len(load_manifest())
        398
    """
    if path is None:
        from importlib.resources import files

        text = files("qtransfer.data").joinpath(_MANIFEST_NAME).read_text(encoding="utf-8")
        where = f"the packaged {_MANIFEST_NAME}"
    else:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise DataError(f"cannot read manifest {path} ({e.strerror or e}). Check the path.") from None
        where = str(path)
    manifest: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        rel = parts[1].lstrip("*") if len(parts) == 2 else ""
        rel = rel[2:] if rel.startswith("./") else rel
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not rel:
            raise DataError(
                f"line {number} of {where} is not 'SHA256  ./relative/path': {line[:80]!r}. "
                f"Regenerate it with `sha256sum` from inside the data folder."
            )
        if _unsafe_reason(rel):
            raise DataError(f"line {number} of {where} names an unsafe path {rel!r}: {_unsafe_reason(rel)}.")
        manifest[rel] = digest
    if not manifest:
        raise DataError(f"{where} lists no files. Use a manifest made with `sha256sum`.")
    return manifest


def verify_tree(root: Path, manifest: dict[str, str]) -> list[str]:
    """Check every manifest file under ``root``; return the problems (empty list: all good).

    Files not in the manifest are ignored.

    Example:
        >>> verify_tree(ensure_hymenoptera(), load_manifest())  # doctest: +SKIP
        []
    """
    root = Path(root)
    problems = []
    for rel, expected in sorted(manifest.items()):
        path = root / rel
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                problems.append(f"{rel}: not a regular file")
                continue
            got = sha256_file(path)
        except FileNotFoundError:
            problems.append(f"{rel}: missing")
            continue
        except OSError as e:
            problems.append(f"{rel}: cannot be read ({e.strerror or e})")
            continue
        if got != expected:
            problems.append(f"{rel}: sha256 {got[:12]}... does not match the manifest's {expected[:12]}...")
    return problems


def ensure_hymenoptera(
    cache_dir: Path | None = None,
    *,
    url: str | None = None,
    manifest: dict[str, str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """Return the verified Hymenoptera folder (holding ``train/`` and ``val/``), getting it if needed.

    Looks in order for: the extracted folder ``<cache>/datasets/hymenoptera_data/``
    (verified file by file; a whole split folder other than ``train/`` may be absent, with a
    warning), the zip ``<cache>/datasets/hymenoptera_data.zip`` (e.g. put
    there by hand), then downloads ``url`` (default ``$QTRANSFER_HYMENOPTERA_URL``, else
    :data:`HYMENOPTERA_URL`) unless ``download=False``.

    Raises :class:`DownloadError` when offline, on a checksum mismatch (the bad zip is
    deleted) or for an unsafe archive; the message says where to put the files instead.

    Example:
        >>> root = ensure_hymenoptera(Path("/tmp/qt-cache"), progress=False)  # doctest: +SKIP
        >>> (root / "train" / "ants").is_dir()                               # doctest: +SKIP
        True
    """
    manifest = load_manifest() if manifest is None else manifest
    target, zip_path = hymenoptera_paths(cache_dir)
    url = url or os.environ.get(URL_ENV) or HYMENOPTERA_URL

    if target.exists():
        absent = sorted({rel.split("/")[0] for rel in manifest} - {"train"} - {p.name for p in target.iterdir()})
        problems = verify_tree(target, {rel: h for rel, h in manifest.items() if rel.split("/")[0] not in absent})
        if not problems:
            if absent:
                warnings.warn(
                    f"{target} holds the verified Hymenoptera {', '.join(s for s in ('train', 'val') if s not in absent)} "
                    f"split(s) but no {'/, '.join(absent)}/ folder: a validation split is drawn from train, so "
                    f"accuracies are not comparable with the published ones (0.967 on the 153 official val images)",
                    stacklevel=2,
                )
            return target
        # qtransfer only ever renames a complete, verified folder into place, so this one was
        # put or changed by hand: say so rather than delete somebody's files.
        raise DownloadError(
            f"{target} is not the verified Hymenoptera data set: {len(problems)} problem(s), e.g. "
            f"{'; '.join(problems[:3])}. Delete that folder (qtransfer then extracts "
            f"{zip_path.name} or downloads it again) or restore the original files."
        )

    if not zip_path.exists():
        if not download:
            raise DownloadError(_offline_message(url, target, zip_path, "downloading is disabled"))
        _download(url, zip_path, progress=progress, target=target)

    return _extract_verified(zip_path, target, manifest)


# ---------------------------------------------------------------------------- download


def _offline_message(url: str, target: Path, zip_path: Path, reason: str) -> str:
    return (
        f"could not download the Hymenoptera data set from {url} ({reason}).\n"
        f"To work offline, either:\n"
        f"  - place the zip (hymenoptera_data.zip, from {HYMENOPTERA_URL} or a mirror) at {zip_path}\n"
        f"  - or place the extracted folder (holding train/ and val/) at {target}\n"
        f"  - or train on a local folder of class folders with --data DIR "
        f"(e.g. --data {_OFFLINE_EXAMPLE}), which needs no download.\n"
        f"A mirror can be given with ${URL_ENV}; the cache folder with --cache-dir or $QTRANSFER_CACHE."
    )


def _download(url: str, zip_path: Path, *, progress: bool, target: Path) -> None:
    """Stream ``url`` to a temporary file beside ``zip_path``, then rename it into place."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise UsageError(f"download URL {url!r} must start with https://, http:// or file://; fix ${URL_ENV}.")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=zip_path.parent, prefix=f".{zip_path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=_TIMEOUT_S)
            except urllib.error.HTTPError as e:
                raise DownloadError(
                    _offline_message(url, target, zip_path, f"the server answered HTTP {e.code} {e.reason}")
                ) from None
            except (urllib.error.URLError, OSError, ValueError) as e:
                reason = getattr(e, "reason", None) or e
                raise DownloadError(_offline_message(url, target, zip_path, f"network error: {reason}")) from None
            with response:
                length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                total = int(length) if length and length.isdigit() else None
                received = 0
                from tqdm import tqdm

                with tqdm(
                    total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=zip_path.name, disable=not progress, leave=False,
                ) as bar:
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except (OSError, ValueError) as e:  # reset, timeout, IncompleteRead
                            raise DownloadError(
                                _offline_message(url, target, zip_path, f"connection lost after {received} bytes: {e}")
                            ) from None
                        if not chunk:
                            break
                        try:
                            out.write(chunk)
                        except OSError as e:
                            raise DownloadError(
                                f"cannot write the download to {tmp} ({e.strerror or e}). Free some space "
                                f"or choose another cache folder with --cache-dir."
                            ) from None
                        received += len(chunk)
                        bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(
                    _offline_message(url, target, zip_path, f"got {received} of {total} bytes: connection cut")
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, zip_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- extraction


def _unsafe_reason(name: str) -> str | None:
    """Why a zip member name / manifest path could escape the target folder, or None."""
    if not name:
        return "empty name"
    if "\x00" in name:
        return "NUL byte in name"
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) >= 2 and unified[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(unified).parts:
        return "'..' component"
    return None


def _is_symlink_member(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _refuse(zip_path: Path, why: str) -> DownloadError:
    zip_path.unlink(missing_ok=True)
    return DownloadError(
        f"{zip_path} was refused and deleted: {why}. Run again to download it afresh, or place a "
        f"good copy of {HYMENOPTERA_URL} there (sha256 of every file must match the manifest)."
    )


def _extract_verified(zip_path: Path, target: Path, manifest: dict[str, str]) -> Path:
    """Check ``zip_path`` against ``manifest`` while extracting it into ``target`` (atomically)."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise _refuse(zip_path, f"not a readable zip archive ({e})") from None
    with archive:
        infos = archive.infolist()
        for info in infos:
            why = _unsafe_reason(info.filename)
            if why:
                raise _refuse(zip_path, f"member {info.filename!r} has an unsafe path ({why})")
            if _is_symlink_member(info):
                raise _refuse(zip_path, f"member {info.filename!r} is a symlink")
        members = _map_members([i for i in infos if not i.is_dir()], manifest)
        missing = sorted(set(manifest) - set(members))
        if missing:
            raise _refuse(
                zip_path, f"{len(missing)} file(s) of the manifest are not in it (e.g. {missing[0]})"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
        try:
            for rel in sorted(members):
                info = members[rel]
                if info.file_size > _MAX_MEMBER_BYTES:
                    raise _refuse(zip_path, f"{info.filename} claims {info.file_size} bytes, too large for a photo")
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                try:
                    with archive.open(info) as src, open(dest, "wb") as out:
                        while chunk := src.read(_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, RuntimeError, NotImplementedError) as e:
                    raise _refuse(zip_path, f"{info.filename} cannot be extracted ({e})") from None
                if digest.hexdigest() != manifest[rel]:
                    raise _refuse(
                        zip_path,
                        f"checksum mismatch for {rel} (sha256 {digest.hexdigest()[:12]}..., "
                        f"manifest {manifest[rel][:12]}...)",
                    )
            try:
                os.rename(tmp, target)
            except OSError:
                # Another process put a folder there meanwhile: use it if it is good.
                if target.exists() and not verify_tree(target, manifest):
                    _remove_tree(tmp)
                    return target
                raise
        except BaseException:
            _remove_tree(tmp)
            raise
    return target


def _map_members(infos: list[zipfile.ZipInfo], manifest: dict[str, str]) -> dict[str, zipfile.ZipInfo]:
    """Map manifest paths to zip members, allowing one top-level folder (``hymenoptera_data/``).

    The prefix ("" or a first path component) matching the most manifest entries wins, so
    stray copies such as ``__MACOSX/...`` are never confused with the real files.
    """
    names = {i.filename.replace("\\", "/"): i for i in infos}
    prefixes = {""} | {n.split("/", 1)[0] + "/" for n in names if "/" in n}
    best: dict[str, zipfile.ZipInfo] = {}
    for prefix in sorted(prefixes):
        mapped = {n[len(prefix):]: i for n, i in names.items() if n.startswith(prefix) and n[len(prefix):] in manifest}
        if len(mapped) > len(best):
            best = mapped
    return best


def _remove_tree(path: Path) -> None:
    """Remove a folder we created (or a damaged cache copy); renamed aside first so it vanishes at once."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    aside = path.with_name(f".{path.name}.old-{os.getpid()}")
    try:
        os.rename(path, aside)
    except OSError:
        aside = path
    shutil.rmtree(aside, ignore_errors=True)
