"""The run cache: `<cache>/<hash>/` holds a finished run; building it is atomic and locked.

Protocol (one writer per hash, any number of readers, across processes and xdist workers):
1. A folder `<hash>/` with a valid COMPLETE marker is a finished run: read it, no lock.
2. Otherwise take `<hash>.lock` (filelock, released by the OS if the holder dies), look
   again, clear debris of killed writers (`.tmp-<hash>-*`, a `<hash>/` without a valid marker),
   train into a fresh `.tmp-<hash>-*` folder, fsync, write COMPLETE last (sizes and sha256 of
   every file), then `os.replace` it to `<hash>/`.
A killed run leaves only a `.tmp-` folder, which no reader looks at and the next writer removes.
Snapshots of 1 MiB or more with equal bytes are stored once: each entry's file is a hard link into
`<cache>/.blobs/<sha256>.safetensors` (step 0 of every seed of a kind is the same base or build);
a blob no entry links to any more is removed by the next commit.

Launched over several processes (`accelerate launch`, harness.launch): every rank trains, the
main rank alone takes the lock, decides (finished or not), writes and commits; the others follow
its decision and wait for the commit before reading.

Corrupt entries (a file missing, truncated, or not matching its sha256): recomputed by default,
with a warning naming the entry and the defect, since every entry can be rebuilt from its spec;
`on_corrupt="error"` raises one UplabError instead (for runs too costly to redo silently).
sha256 is checked when the entry is under VERIFY_HASH_BYTES (sizes always), once per process.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

from filelock import FileLock

from harness.checkpoint.model import file_sha256
from harness.errors import UplabError
from harness.runs.result import RunResult
from harness.runs.runner import execute, write_json
from harness.runs.spec import LocalBase, RunSpec, Scratch
from harness.train import dist

MARKER = "COMPLETE"
BLOBS = ".blobs"
SHARE_BYTES = 1 << 20  # smaller snapshots are not worth a link (and tiny runs write thousands)
VERIFY_HASH_BYTES = 256 * 2**20
_verified: set[tuple] = set()  # (entry, file mtimes) whose hashes this process has checked


def default_cache_dir() -> Path:
    return Path(os.environ.get("UPLAB_CACHE", ".uplab-cache"))


def _defect(entry: Path) -> str | None:
    """Why `entry` is not a usable finished run, or None when it is."""
    try:
        files = json.loads((entry / MARKER).read_text())["files"]
    except FileNotFoundError:
        return "no COMPLETE marker (the run did not finish)"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "its COMPLETE marker is unreadable"
    stats = {}
    for name, want in files.items():
        try:
            st = (entry / name).stat()
        except FileNotFoundError:
            return f"{name} is missing"
        if st.st_size != want["size"]:
            return f"{name} has {st.st_size} bytes, {want['size']} expected (truncated?)"
        stats[name] = st.st_mtime_ns
    stamp = (str(entry), tuple(sorted(stats.items())))
    if stamp in _verified:  # hashed before in this process, and no file was touched since
        return None
    if sum(w["size"] for w in files.values()) <= VERIFY_HASH_BYTES:
        for name, want in files.items():
            if file_sha256(entry / name) != want["sha256"]:
                return f"{name} does not match its sha256 (corrupted on disk)"
    _verified.add(stamp)
    return None


def _remove(path: Path, cache: Path) -> None:
    """Move aside first (atomic), then delete: a reader never sees a half-deleted entry."""
    if not path.exists():
        return
    trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=cache))
    os.replace(path, trash / path.name)
    shutil.rmtree(trash, ignore_errors=True)


def _share(f: Path, sha: str, blobs: Path) -> None:
    """Make `f` a hard link of the one stored copy of its bytes (`<cache>/.blobs/<sha256>`).

    Snapshots repeat across runs: step 0 of every seed of a fine-tune is the same base or build.
    At `real` that is 0.5-0.9 GB per run, so sharing roughly halves the cache. An entry stays a
    plain folder of plain files; a blob nothing else links to is garbage (_collect).
    """
    blob = blobs / f"{sha}{f.suffix}"
    for _ in range(2):
        try:
            os.link(f, blob)  # the first copy of these bytes: it becomes the blob
            return
        except FileExistsError:
            pass
        # A corrupted blob must not spread: link to it only when it still holds these bytes.
        try:
            if blob.stat().st_size == f.stat().st_size and file_sha256(blob) == sha:
                link = f.with_name(f".{f.name}.link")
                os.link(blob, link)
                os.replace(link, f)
                return
            _remove_file(blob)
        except FileNotFoundError:  # collected meanwhile by another writer: try again
            continue


def _remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _collect(blobs: Path) -> None:
    """Drop blobs no entry links to any more (their entries were removed or recomputed)."""
    for blob in blobs.glob("*"):
        try:
            if blob.stat().st_nlink == 1:
                _remove_file(blob)
        except FileNotFoundError:
            pass


def _commit(tmp: Path, final: Path, spec: RunSpec) -> None:
    files = {f.name: {"size": f.stat().st_size, "sha256": file_sha256(f)}
             for f in sorted(tmp.iterdir()) if f.is_file()}
    blobs = final.parent / BLOBS
    shared = [n for n, meta in files.items() if n.endswith(".safetensors") and meta["size"] >= SHARE_BYTES]
    if shared:  # a cache of small runs only never gets the folder
        blobs.mkdir(exist_ok=True)
        for name in shared:
            _share(tmp / name, files[name]["sha256"], blobs)
    if blobs.is_dir():
        _collect(blobs)
    write_json(tmp / MARKER, {"key": spec.key, "files": files})  # written last, fsynced
    os.replace(tmp, final)
    dfd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself survives a crash
    finally:
        os.close(dfd)


def lookup(spec: RunSpec, cache_dir: str | Path) -> RunResult | None:
    """The finished run of `spec`, or None (absent, unfinished or corrupt)."""
    entry = Path(cache_dir) / spec.key
    return RunResult(spec, entry) if entry.is_dir() and _defect(entry) is None else None


def get_or_run(spec: RunSpec, cache_dir: str | Path | None = None, *, progress: bool = False,
               callbacks=(), on_corrupt: str = "recompute",
               _on_write: Callable[[Path], None] | None = None) -> RunResult:
    """The run's result from the cache, training it first if no finished entry exists."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if dist.launched():
        return _get_or_run_ranked(spec, cache, progress=progress, callbacks=callbacks, on_corrupt=on_corrupt)
    hit = lookup(spec, cache)
    if hit is not None:
        return hit
    # The base's own entry first, outside our lock: waiters on this hash should not queue behind it.
    base = get_or_run(spec.base, cache, progress=progress, on_corrupt=on_corrupt) \
        if isinstance(spec.base, RunSpec) else spec.base
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UplabError(f"cannot create cache folder {str(cache)!r} ({e.strerror}); "
                         "pick a writable path") from None
    entry = cache / spec.key
    with FileLock(str(cache / f"{spec.key}.lock")):
        if entry.exists():
            defect = _defect(entry)
            if defect is None:  # another process finished it while we waited
                return RunResult(spec, entry)
            if on_corrupt == "error":
                raise UplabError(f"cache entry {entry} is corrupt: {defect}; delete the folder to rerun")
            warnings.warn(f"cache entry {entry} is corrupt ({defect}); recomputing", stacklevel=2)
            _remove(entry, cache)
        for debris in cache.glob(f".tmp-{spec.key}-*"):  # left by killed writers; we hold the lock
            shutil.rmtree(debris, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.key}-", dir=cache))
        try:
            execute(spec, base, tmp, progress=progress, callbacks=callbacks, on_write=_on_write)
            _commit(tmp, entry, spec)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UplabError(f"no space left writing run {spec.key[:12]} into {cache}; free space "
                                 "or choose another cache folder") from None
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return RunResult(spec, entry)


def _get_or_run_ranked(spec: RunSpec, cache: Path, *, progress: bool, callbacks, on_corrupt: str) -> RunResult:
    """get_or_run as one rank of a launched run: every rank trains, the main rank writes.

    Every rank must call it for the same spec. Each decision (finished, train, or an error) is
    the main rank's, broadcast, so no rank waits in a collective the others skipped.
    """
    base: Scratch | LocalBase | RunResult = spec.base
    if isinstance(spec.base, RunSpec):  # the base's entry first, by the same protocol
        base = _get_or_run_ranked(spec.base, cache, progress=progress, callbacks=(), on_corrupt=on_corrupt)
    entry = cache / spec.key
    if not dist.is_main():
        decision = dist.agree(None)
        if decision != "train":
            return _follow(decision, spec, entry)
        execute(spec, base, None, progress=False, callbacks=callbacks)
        return _follow(dist.agree(None), spec, entry)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(cache / f"{spec.key}.lock"))
        lock.acquire()
    except OSError as e:
        msg = f"cannot create cache folder {str(cache)!r} ({e.strerror}); pick a writable path"
        dist.agree(("error", msg))
        raise UplabError(msg) from None
    try:
        if entry.exists():
            defect = _defect(entry)
            if defect is None:
                dist.agree("hit")
                return RunResult(spec, entry)
            if on_corrupt == "error":
                msg = f"cache entry {entry} is corrupt: {defect}; delete the folder to rerun"
                dist.agree(("error", msg))
                raise UplabError(msg)
            warnings.warn(f"cache entry {entry} is corrupt ({defect}); recomputing", stacklevel=2)
            _remove(entry, cache)
        for debris in cache.glob(f".tmp-{spec.key}-*"):
            shutil.rmtree(debris, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.key}-", dir=cache))
        dist.agree("train")
        try:
            execute(spec, base, tmp, progress=progress, callbacks=callbacks)
            _commit(tmp, entry, spec)
        except BaseException as e:
            # No broadcast here: the other ranks may be inside a training collective. This
            # rank's exit ends the launch (torchrun stops the others).
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UplabError(f"no space left writing run {spec.key[:12]} into {cache}; free space "
                                 "or choose another cache folder") from None
            raise
        dist.agree("committed")  # the others read the entry only after this
    finally:
        lock.release()
    return RunResult(spec, entry)


def _follow(decision, spec: RunSpec, entry: Path) -> RunResult:
    """A non-main rank's result once the main rank has said how the entry stands."""
    if isinstance(decision, tuple):
        raise UplabError(decision[1])
    return RunResult(spec, entry)
