"""The run cache: `<cache>/<key>/` holds a finished run; building it is atomic and locked.

`<key>` names the computation, not only the spec (harness.runs.engine.entry_key): the spec's key,
how it was computed (alone or stacked with which seeds; device, resolved precision, ranks) and the
key of the base entry it started from. `get_or_run` computes a run alone; the suite's groups of
seeds go through harness.runs.many. Below, "hash" is that key.

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

Thinned entries (`thin`): a finished run may drop snapshots between its ends once what is read
from them is stored beside it (harness.claims.memo). Under the entry's lock the marker is
rewritten without those files and names their steps (`thinned`), then the files go: the entry
stays a valid finished run, and reading a dropped snapshot is one UplabError naming why
(RunResult.require_snapshot), never a recomputation of the run.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Callable

from filelock import FileLock

from harness.checkpoint.model import file_sha256
from harness.errors import UplabError
from harness.runs.engine import Engine, entry_key
from harness.runs.result import MARKER, THINNED, RunResult, snapshot_name
from harness.runs.runner import execute, write_json
from harness.runs.spec import LocalBase, RunSpec, Scratch
from harness.train import dist

BLOBS = ".blobs"
SHARE_BYTES = 1 << 20  # smaller snapshots are not worth a link (and tiny runs write thousands)
VERIFY_HASH_BYTES = 256 * 2**20
_verified: set[tuple] = set()  # (entry, file mtimes) whose hashes this process has checked


def default_cache_dir() -> Path:
    return Path(os.environ.get("UPLAB_CACHE", ".uplab-cache"))


def _defect(entry: Path) -> str | None:
    """Why `entry` is not a usable finished run, or None when it is."""
    try:
        marker = json.loads((entry / MARKER).read_bytes())
    except FileNotFoundError:
        return "no COMPLETE marker (the run did not finish)"
    except (OSError, ValueError):
        return "its COMPLETE marker is unreadable"
    files = _marker_files(marker, entry.name)
    if files is None:  # well-formed JSON of the wrong shape: as unreadable as garbage
        return "its COMPLETE marker has the wrong structure"
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


def _marker_files(marker, name: str) -> dict | None:
    """The marker's {file: {size, sha256}}, or None when it is not that (or names another key)."""
    if not isinstance(marker, dict) or marker.get("key") != name or not isinstance(marker.get("files"), dict):
        return None
    files = marker["files"]
    ok = all(isinstance(f, str) and "/" not in f and isinstance(m, dict) and type(m.get("size")) is int
             and m["size"] >= 0 and isinstance(m.get("sha256"), str) for f, m in files.items())
    return files if ok and files else None


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


def _commit(tmp: Path, final: Path, spec: RunSpec, engine: Engine | None = None) -> None:
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
    write_json(tmp / MARKER, {"key": final.name, "spec": spec.key, "files": files,  # written last, fsynced
                              "engine": (engine or Engine.here()).describe(spec)})
    os.replace(tmp, final)
    dfd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself survives a crash
    finally:
        os.close(dfd)


def thin(run: RunResult, keep: Iterable[int], derive: Callable[[RunResult], None]) -> RunResult:
    """Drop `run`'s snapshots at steps not in `keep`, after `derive(run)` has computed and stored
    everything that is read from them; idempotent (a thinned run is returned as it is, `derive`
    not called). Under the entry's lock, so two processes settling one run derive it once."""
    entry = Path(run.path)
    keep = set(keep)
    names = {snapshot_name(s) for s in run.metrics["snapshots"] if s not in keep}
    if not any((entry / n).exists() for n in names):
        return run
    with FileLock(str(entry.parent / f"{entry.name}.lock")):
        marker = json.loads((entry / MARKER).read_bytes())
        files = _marker_files(marker, entry.name)
        if files is None:
            raise UplabError(f"cache entry {entry} has no valid COMPLETE marker; it cannot be thinned")
        drop = sorted(n for n in names if n in files)
        if not drop:
            return run
        derive(run)
        steps = {s for s in run.metrics["snapshots"] if snapshot_name(s) in drop}
        marker = {**marker, "files": {n: m for n, m in files.items() if n not in drop},
                  THINNED: sorted(steps | set(marker.get(THINNED, [])))}
        tmp = entry / f".{MARKER}.tmp"
        write_json(tmp, marker)
        os.replace(tmp, entry / MARKER)  # the entry never lists a file that is gone
        for n in drop:
            _remove_file(entry / n)
    if (entry.parent / BLOBS).is_dir():
        _collect(entry.parent / BLOBS)
    return run


def _base_key(base) -> str | None:
    return base.key if isinstance(base, RunResult) else None


def lookup(spec: RunSpec, cache_dir: str | Path, engine: Engine | None = None,
           base: RunResult | None = None) -> RunResult | None:
    """The finished run of `spec` computed by `engine` (default: alone, here) from `base` (default:
    the base's own entry by the same engine), or None (absent, unfinished or corrupt)."""
    engine = engine or Engine.here()
    if isinstance(spec.base, RunSpec) and base is None:
        base = lookup(spec.base, cache_dir, engine)
        if base is None:
            return None
    entry = Path(cache_dir) / entry_key(spec, engine, _base_key(base))
    return RunResult(spec, entry) if entry.is_dir() and _defect(entry) is None else None


def get_or_run(spec: RunSpec, cache_dir: str | Path | None = None, *, progress: bool = False,
               callbacks=(), on_corrupt: str = "recompute", base: RunResult | None = None,
               _on_write: Callable[[Path], None] | None = None) -> RunResult:
    """The run's result from the cache, training it alone first if no finished entry exists.
    `base`: the base's entry when the caller resolved it (a group's stacked base); by default the
    base too is looked up or trained alone."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if dist.launched():
        return _get_or_run_ranked(spec, cache, progress=progress, callbacks=callbacks, on_corrupt=on_corrupt)
    engine = Engine.here()
    # The base's own entry first, outside our lock: waiters on this hash should not queue behind it.
    if isinstance(spec.base, RunSpec) and base is None:
        base = get_or_run(spec.base, cache, progress=progress, on_corrupt=on_corrupt)
    hit = lookup(spec, cache, engine, base)
    if hit is not None:
        return hit
    base = base if isinstance(spec.base, RunSpec) else spec.base
    key = entry_key(spec, engine, _base_key(base))
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UplabError(f"cannot create cache folder {str(cache)!r} ({e.strerror}); "
                         "pick a writable path") from None
    entry = cache / key
    lock = FileLock(str(cache / f"{key}.lock"))
    try:
        lock.acquire()
    except OSError as e:  # a read-only cache: lookups work, writing does not
        raise UplabError(f"cannot write into cache folder {str(cache)!r} ({e.strerror}); pick a writable "
                         "path") from None
    try:
        if entry.exists():
            defect = _defect(entry)
            if defect is None:  # another process finished it while we waited
                return RunResult(spec, entry)
            if on_corrupt == "error":
                raise UplabError(f"cache entry {entry} is corrupt: {defect}; delete the folder to rerun")
            warnings.warn(f"cache entry {entry} is corrupt ({defect}); recomputing", stacklevel=2)
            _remove(entry, cache)
        for debris in cache.glob(f".tmp-{key}-*"):  # left by killed writers; we hold the lock
            shutil.rmtree(debris, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=cache))
        try:
            execute(spec, base, tmp, progress=progress, callbacks=callbacks, on_write=_on_write,
                    record=_provenance(spec, engine, base))
            _commit(tmp, entry, spec, engine)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UplabError(f"no space left writing run {spec.key[:12]} into {cache}; free space "
                                 "or choose another cache folder") from None
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        lock.release()
    return RunResult(spec, entry)


def _get_or_run_ranked(spec: RunSpec, cache: Path, *, progress: bool, callbacks, on_corrupt: str) -> RunResult:
    """get_or_run as one rank of a launched run: every rank trains, the main rank writes.

    Every rank must call it for the same spec. Each decision (finished, train, or an error) is
    the main rank's, broadcast, so no rank waits in a collective the others skipped.
    """
    base: Scratch | LocalBase | RunResult = spec.base
    if isinstance(spec.base, RunSpec):  # the base's entry first, by the same protocol
        base = _get_or_run_ranked(spec.base, cache, progress=progress, callbacks=(), on_corrupt=on_corrupt)
    engine = Engine.here(ranks=dist.world_size())
    key = entry_key(spec, engine, _base_key(base))
    entry = cache / key
    if not dist.is_main():
        decision = dist.agree(None)
        if decision != "train":
            return _follow(decision, spec, entry)
        execute(spec, base, None, progress=False, callbacks=callbacks)
        return _follow(dist.agree(None), spec, entry)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(cache / f"{key}.lock"))
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
        for debris in cache.glob(f".tmp-{key}-*"):
            shutil.rmtree(debris, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=cache))
        dist.agree("train")
        try:
            execute(spec, base, tmp, progress=progress, callbacks=callbacks, record=_provenance(spec, engine, base))
            _commit(tmp, entry, spec, engine)
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


def _provenance(spec: RunSpec, engine: Engine, base) -> dict:
    """spec.json's record of the computation: the engine and the base entry it started from."""
    return {"engine": engine.describe(spec), "base_entry": _base_key(base)}
