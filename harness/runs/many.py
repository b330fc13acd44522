"""Many runs at once: the missing seeds of one run kind train together (harness.train.ensemble).

`get_or_run_many(specs, cache)` returns the same RunResults as `[get_or_run(s, cache) for s in
specs]`, and leaves the same cache entries (same hash, files, metrics keys). What it changes is
how missing entries are built: specs equal up to their seed (and their bases' seeds) form a kind,
and the missing seeds of a kind train as one stacked computation. Bases are resolved first, as
a kind of their own.

Locking keeps the cache's protocol (harness.runs.cache): one writer per hash. A kind's locks are
taken in key order, each waited for: of two processes asking for one kind, the first trains every
missing seed and the second finds them done, so which seeds train together (and so each seed's
numbers, since stacking changes the summation order) does not depend on timing.
Kinds the stacked forward cannot reproduce (harness.train.ensemble.cannot_stack says why), a
kind with one missing seed, and launched (multi-process) runs go through get_or_run one by one.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from filelock import FileLock, Timeout

from harness import data as data_mod
from harness.errors import UplabError
from harness.runs.cache import RunResult, _commit, _defect, _remove, default_cache_dir, get_or_run, lookup
from harness.runs.runner import apply_plan, load_base, tokenizer_for, write_record, write_snapshot
from harness.runs.spec import RunSpec, Scratch
from harness.train import dist


def kind_of(spec: RunSpec) -> RunSpec:
    """The spec with its seed, and its bases' seeds, set to 0: what seeds of one kind share."""
    base = spec.base
    if isinstance(base, Scratch):
        base = base.model_copy(update={"seed": 0})
    elif isinstance(base, RunSpec):
        base = kind_of(base)
    return spec.model_copy(update={"seed": 0, "base": base})


def get_or_run_many(specs: list[RunSpec], cache_dir: str | Path | None = None, *,
                    progress: bool = False) -> list[RunResult]:
    """The runs' results in the order given, training the missing seeds of each kind together."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if dist.launched():
        return [get_or_run(s, cache, progress=progress) for s in specs]
    unique = list({s.key: s for s in specs}.values())
    missing = [s for s in unique if lookup(s, cache) is None]
    if missing:
        bases = [s.base for s in missing if isinstance(s.base, RunSpec)]
        if bases:
            get_or_run_many(bases, cache, progress=progress)
        groups: dict[str, list[RunSpec]] = {}
        for s in missing:
            groups.setdefault(kind_of(s).key, []).append(s)
        for group in groups.values():
            _build_kind(group, cache, progress)
    # Every entry exists now, or is being written by another process: get_or_run waits for it.
    return [lookup(s, cache) or get_or_run(s, cache, progress=progress) for s in specs]


def _build_kind(specs: list[RunSpec], cache: Path, progress: bool) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UplabError(f"cannot create cache folder {str(cache)!r} ({e.strerror}); pick a writable path") from None
    if not _one_by_one(cache, specs):
        _stack_or_mark(specs, cache, progress)
    # A kind that cannot be stacked (or one missing seed): the per-seed loop, under get_or_run's
    # own lock. A seed whose lock another process holds is left to it while a free one is trained
    # (when every pending seed is held, wait for the first): two workers asking for one kind split
    # its seeds instead of queueing behind each other seed by seed (at `real` one worker trained
    # every run while the other waited). Per-seed runs do not depend on which process trains them.
    pending = [s for s in specs if lookup(s, cache) is None]
    while pending:
        free = next((s for s in pending if not _held_elsewhere(cache, s)), pending[0])
        get_or_run(free, cache, progress=progress)  # trains it, finds it done, or waits for its holder
        pending = [s for s in pending if lookup(s, cache) is None]


def _stack_or_mark(specs: list[RunSpec], cache: Path, progress: bool) -> None:
    """Train the missing seeds together; or, when the kind cannot be stacked, say so in a marker
    (`<kind>.one-by-one`) that every process asking for the kind reads before it waits on a lock."""
    held: list[tuple[RunSpec, FileLock]] = []
    try:
        # Locks in key order, waiting for each: two processes asking for one kind never split
        # its seeds between them (the one that gets the first lock trains every missing seed,
        # the other then finds them done), so which seeds train together, and hence each seed's
        # numbers (stacking changes the summation order), never depends on timing. Key order
        # also rules out a deadlock between processes that ask for overlapping seeds.
        for s in sorted(specs, key=lambda x: x.key):
            lock = FileLock(str(cache / f"{s.key}.lock"))
            lock.acquire()
            held.append((s, lock))
            if _one_by_one(cache, specs):  # found out by the process we waited for
                return
            entry = cache / s.key
            if entry.exists():
                defect = _defect(entry)
                if defect is None:  # finished while we looked
                    held.pop()
                    lock.release()
                    continue
                warnings.warn(f"cache entry {entry} is corrupt ({defect}); recomputing", stacklevel=4)
                _remove(entry, cache)
            for debris in cache.glob(f".tmp-{s.key}-*"):
                shutil.rmtree(debris, ignore_errors=True)
        if len(held) >= 2:
            mine = sorted((s for s, _ in held), key=lambda x: x.seed)
            why, expected = _train_together(mine, cache, progress)
            if why is None:
                return
            if expected:  # a mode, precision or size: true of this kind at this many seeds
                _mark_one_by_one(cache, mine, why)
            else:  # the stacked forward missed something about this model: say so
                warnings.warn(f"{len(mine)} seeds of run kind {kind_of(mine[0]).key[:12]} train one by one: {why}",
                              stacklevel=4)
    finally:
        for _, lock in held:
            lock.release()


def _marker(cache: Path, spec: RunSpec) -> Path:
    return cache / f"{kind_of(spec).key}.one-by-one"


def _one_by_one(cache: Path, specs: list[RunSpec]) -> bool:
    """Whether a process found that this many seeds of this kind cannot be stacked."""
    try:
        seeds = json.loads(_marker(cache, specs[0]).read_text())["seeds"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(seeds, int) and len(specs) >= seeds


def _mark_one_by_one(cache: Path, specs: list[RunSpec], why: str) -> None:
    marker = _marker(cache, specs[0])
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"seeds": len(specs), "why": why}))
    os.replace(tmp, marker)


def _held_elsewhere(cache: Path, spec: RunSpec) -> bool:
    """Whether another process holds `spec`'s lock right now (asked without waiting)."""
    lock = FileLock(str(cache / f"{spec.key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _train_together(specs: list[RunSpec], cache: Path, progress: bool) -> tuple[str | None, bool]:
    """Train and commit every spec's entry (its lock is held): (None, _); or (why they cannot be
    stacked, whether that was known before training: a mode or precision cannot_stack names)."""
    from harness.train.ensemble import cannot_stack, train_many
    from harness.train.stacked import StackMismatch

    started = time.time()
    loaded = []
    for s in specs:
        model = load_base(get_or_run(s.base, cache, progress=progress) if isinstance(s.base, RunSpec) else s.base)
        source_layers = model.config.num_hidden_layers
        roles = ["orig"] * source_layers
        if s.plan is not None:
            model, layer_map = apply_plan(model, s.plan)
            roles = layer_map.roles()
        why = cannot_stack(model, s, len(specs))  # the same for every seed of a kind: the first one says
        if why:
            return why, True
        loaded.append((model, source_layers, roles))
    tok = tokenizer_for(specs[0].base)
    train_set, eval_sets = data_mod.load(specs[0].data, tok)
    tmps = [Path(tempfile.mkdtemp(prefix=f".tmp-{s.key}-", dir=cache)) for s in specs]

    def sink_for(out: Path):
        return lambda step, state: write_snapshot(out, step, state)

    try:
        try:
            all_metrics = train_many([m for m, _, _ in loaded], specs, train_set, eval_sets, pad_id=tok.pad_id,
                                     sinks=[sink_for(t) for t in tmps], progress=progress)
        except StackMismatch as e:
            for t in tmps:
                shutil.rmtree(t, ignore_errors=True)
            return str(e), False
        for s, t, (model, source_layers, roles), metrics in zip(specs, tmps, loaded, all_metrics):
            write_record(t, s, model, metrics, source_layers=source_layers, roles=roles,
                         tokenizer=tok.name, started=started,
                         stacked_seeds=[x.seed for x in specs])  # trained as one computation with these
            _commit(t, cache / s.key, s)
    except BaseException as e:
        for t in tmps:
            shutil.rmtree(t, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UplabError(f"no space left writing {len(specs)} runs into {cache}; free space "
                             "or choose another cache folder") from None
        raise
    return None, True
