"""Where builds land: a stage folder beside OUT, renamed into place only when complete.

The rules that keep a careless `--force` from costing data:
- OUT is never `.`, the working directory or a folder above it, a source, or a folder that
  holds a source; a symlink or a file at OUT is never replaced.
- `--force` replaces only a previous uplab output, recognised by the MARKER file every
  staged output carries. Anything else at OUT must be removed by hand.
- The stage is removed when the build fails, is interrupted or gets SIGTERM; stages that a
  SIGKILL left behind (their process, on this host, is gone) are removed by the next build in
  that folder.
- Files and folders get the modes the user's umask gives, not mkdtemp's private 0700.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import UplabError

# Errors of writing, not of reading a source: a full disk, a quota, a read-only folder.
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
MARKER = ".uplab-output"  # written into every staged output; --force replaces only folders with it
# .OUT.uplab-stage.HOST.PID.xxxx: the host keeps a build on another machine sharing the folder
# (NFS) from being taken for a dead one
_STAGE = re.compile(r"^\..*\.uplab-(?:stage|old)\.([A-Za-z0-9-]+)\.(\d+)\.[^/]*$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


class Terminated(KeyboardInterrupt):
    """SIGTERM during a build: unwinds like Ctrl-C so the stage is removed."""

    what = "terminated (SIGTERM); OUT was not written"
    exit_status = 143


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give `path` (and, for a folder, everything in it) the modes a plain mkdir/open would."""
    mask = umask()
    paths = [path] + (list(path.rglob("*")) if path.is_dir() and not path.is_symlink() else [])
    for p in paths:
        if p.is_symlink():
            continue
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_out(out: str | Path, *, force: bool, protect: Iterable[str | Path] = ()) -> Path:
    """Refuse an OUT that a build could not create or replace without losing data; the
    absolute path it will be written to otherwise."""
    given = Path(out)
    if given.is_symlink():
        raise UplabError(f"{given} is a symlink; uplab never writes through one: choose a new path")
    target = given.resolve()
    cwd = Path.cwd().resolve()
    if _inside(cwd, target):
        raise UplabError(f"{given} is the working directory or holds it; write to a new "
                         "sub-folder instead, e.g. ./out")
    for src in protect:
        src = Path(src).resolve()
        if _inside(src, target):
            what = "is" if src == target else "holds"
            raise UplabError(f"{given} {what} the source {src}; choose an output path outside it")
    if not given.exists():
        return target
    if not given.is_dir():
        raise UplabError(f"{given} exists and is a file; choose a new path (uplab replaces only "
                         "its own output folders)")
    if not any(given.iterdir()):
        return target
    if not force:
        raise UplabError(f"{given} already exists and is not empty; choose a new path or pass "
                         "--force (which replaces only an earlier uplab output)")
    if not (given / MARKER).is_file():
        raise UplabError(f"{given} is not an earlier uplab output (it has no {MARKER}); --force "
                         "will not replace it: remove it yourself or choose a new path")
    return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_stages(folder: Path) -> list[Path]:
    """Remove stage folders in `folder` whose process no longer runs (a SIGKILLed build)."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _STAGE.match(p.name)
        if (m and m.group(1) == _host() and p.is_dir() and not p.is_symlink()
                and not _alive(int(m.group(2)))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into an exception (main thread only) so cleanup runs as for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def os_error(e: Exception, path) -> OSError | None:
    """The OSError inside a safetensors SafetensorError, if it is one. The Rust writer reports a
    full disk as SafetensorError("... (os error 28)"), which no `except OSError` catches (the run
    cache's and the staged writers' ENOSPC handlers); transformers' save_pretrained raises it too."""
    if isinstance(e, OSError):
        return e
    if type(e).__name__ != "SafetensorError":
        return None
    code = re.search(r"os error (\d+)|code: (\d+)", str(e))
    if code is None:
        return None
    n = int(code.group(1) or code.group(2))
    return OSError(n, os.strerror(n), str(path))


def _stage_prefix(target: Path, kind: str) -> str:
    return f".{target.name}.uplab-{kind}.{_host()}.{os.getpid()}."


def _stage_dir(target: Path, kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=_stage_prefix(target, kind), dir=target.parent))


@contextmanager
def staged_output(out: str | Path, *, force: bool = False,
                  protect: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Build a folder in a stage beside `out`; it becomes `out` only when the body completes.

    `protect`: sources the build reads (OUT may not be or hold one)."""
    target = check_out(out, force=force, protect=protect)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UplabError(f"cannot create {target.parent} ({e.strerror})") from None
    remove_stale_stages(target.parent)
    with _sigterm_unwinds():  # installed before the stage exists: no window without cleanup
        try:
            stage = _stage_dir(target, "stage")
            yield stage
            (stage / MARKER).write_text("written by uplab; `--force` may replace this folder\n")
            apply_umask(stage)
            _move_into_place(stage, target)
        except Exception as e:  # a full disk or a read-only folder: one line (the stage goes below)
            err = os_error(e, target)
            if err is None or err.errno not in _WRITE_ERRORS:
                raise
            raise UplabError(f"cannot write {target} ({err.strerror}); free space or choose a writable "
                             "folder") from None
        finally:
            # By name, not by the variable: a SIGTERM between mkdtemp's mkdir and its return
            # leaves a stage that `stage` never named.
            for p in target.parent.glob(glob.escape(_stage_prefix(target, "stage")) + "*"):
                shutil.rmtree(p, ignore_errors=True)


def _move_into_place(stage: Path, target: Path) -> None:
    if target.is_dir() and any(target.iterdir()):
        old = _stage_dir(target, "old")
        os.replace(target, old / target.name)  # checked by check_out: an earlier uplab output
        try:
            os.replace(stage, target)
        except BaseException:
            os.replace(old / target.name, target)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    else:
        if target.is_dir():
            target.rmdir()  # empty: nothing to keep
        os.replace(stage, target)


def write_file(path: str | Path, text: str, *, force: bool = False) -> None:
    """Write a small text file atomically; an existing file is replaced only with force."""
    path = Path(path)
    if path.is_symlink() or path.is_dir():
        raise UplabError(f"{path} is a {'symlink' if path.is_symlink() else 'folder'}; "
                         "give a file path")
    if path.exists() and not force:
        raise UplabError(f"{path} already exists; choose a new path or pass --force to replace it")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UplabError(f"cannot write {path} ({e.strerror})") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UplabError(f"cannot write {path} ({e.strerror}); free space or choose a writable folder") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
