"""Many runs at once: the seeds of one run kind train together (harness.train.ensemble).

`get_or_run_many(specs, cache)` returns a RunResult per spec in the order given. Specs equal up to
their seed (and their bases' seeds) form a kind; a kind's seeds train as one stacked computation,
and since stacking changes the summation order (and a long run amplifies it), the cache key of
each seed names that group (harness.runs.engine): seed 0 of the group (0, 1, 2) is another entry
than seed 0 trained alone (`get_or_run`, `uplab train`) or in (0, 1). When any seed of the group is
missing (never trained, or its entry found corrupt), the whole group trains again, so a seed's
bits never depend on which seeds happened to be cached; the entries that were there are left as
they are (the computation is deterministic, so they hold the same bits). Bases are resolved
first, as a group of their own with their own seeds.

Locking keeps the cache's protocol (harness.runs.cache): one writer per key. A group's locks are
taken in key order, each waited for: of two processes asking for one group, the first trains it
and the second finds it done; key order rules out a deadlock between overlapping requests.
Kinds the stacked forward cannot train (harness.train.ensemble.cannot_stack says why, or the
stacked forward is found to differ from the model's own) are marked (`<kind>.<device>.one-by-one`)
and train one seed at a time under keys of runs alone; so do groups of one seed, and launched
(multi-process) runs.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from harness import data as data_mod
from harness.errors import UplabError
from harness.runs.cache import (RunResult, _commit, _defect, _provenance, _remove, default_cache_dir,
                                get_or_run, lookup)
from harness.runs.engine import Engine, effective, entry_key, kind_of, marker
from harness.runs.runner import apply_plan, load_base, tokenizer_for, write_record, write_snapshot
from harness.runs.spec import RunSpec
from harness.train import dist

__all__ = ["get_or_run_many", "lookup_in_group", "kind_of"]


def _unique(specs: list[RunSpec]) -> list[RunSpec]:
    return list({s.key: s for s in specs}.values())


def _engine_of(group: list[RunSpec], cache: Path) -> Engine:
    """The engine a kind's group is computed with: stacked with its seeds, unless it is one seed,
    repeats a seed (bases of other seeds), or is marked as not stackable."""
    seeds = [s.seed for s in group]
    if len(set(seeds)) != len(seeds):
        return Engine.here()
    return effective(cache, group[0], Engine.here(seeds))


def _kinds(specs: list[RunSpec]) -> dict[str, list[RunSpec]]:
    groups: dict[str, list[RunSpec]] = {}
    for s in _unique(specs):
        groups.setdefault(kind_of(s).key, []).append(s)
    return groups


def lookup_in_group(specs: list[RunSpec], spec: RunSpec, cache_dir: str | Path) -> RunResult | None:
    """`spec`'s finished entry as computed in the group `specs`, or None: the warm path of
    get_or_run_many, which looks up only `spec`'s own chain of bases."""
    cache = Path(cache_dir)
    base = None
    if isinstance(spec.base, RunSpec):
        base = lookup_in_group([s.base for s in specs if isinstance(s.base, RunSpec)], spec.base, cache)
        if base is None:
            return None
    group = _kinds(specs)[kind_of(spec).key]
    return lookup(spec, cache, _engine_of(group, cache), base)


def get_or_run_many(specs: list[RunSpec], cache_dir: str | Path | None = None, *,
                    progress: bool = False, after: Callable[[RunResult], RunResult] | None = None
                    ) -> list[RunResult]:
    """The runs' results in the order given, each kind's seeds computed as one group.

    `after(run)` (not applied to bases) settles each run as soon as it is finished, before the
    next seed of a kind trains one by one: e.g. harness.runs.cache.thin, so that a kind's runs
    never all hold their full recordings on disk at once. It must be idempotent: it also sees
    runs found finished. A launched (multi-process) request leaves its runs unsettled."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if dist.launched():
        return [get_or_run(s, cache, progress=progress) for s in specs]
    done = _resolve(specs, cache, progress, after)
    return [done[s.key] for s in specs]


def _resolve(specs: list[RunSpec], cache: Path, progress: bool,
             after: Callable[[RunResult], RunResult] | None = None) -> dict[str, RunResult]:
    run_bases = [s.base for s in specs if isinstance(s.base, RunSpec)]
    resolved = _resolve(run_bases, cache, progress) if run_bases else {}
    out: dict[str, RunResult] = {}
    for group in _kinds(specs).values():
        bases = {s.key: resolved.get(s.base.key) if isinstance(s.base, RunSpec) else None for s in group}
        built = _build_kind(group, bases, cache, progress, after)
        out.update({k: after(r) for k, r in built.items()} if after else built)
    return out


def _build_kind(group: list[RunSpec], bases: dict, cache: Path, progress: bool,
                after: Callable[[RunResult], RunResult] | None = None) -> dict[str, RunResult]:
    engine = _engine_of(group, cache)
    found = {s.key: lookup(s, cache, engine, bases[s.key]) for s in group}
    if all(found.values()):
        return found
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UplabError(f"cannot create cache folder {str(cache)!r} ({e.strerror}); pick a writable path") from None
    if engine.stack:
        if _stack_or_mark(group, bases, engine, cache, progress) is None:
            return {s.key: lookup(s, cache, engine, bases[s.key]) or _gone(s, engine) for s in group}
        engine = engine.alone()
    # A kind that cannot be stacked (or one seed): the per-seed loop, under get_or_run's own lock.
    # A seed whose lock another process holds is left to it while a free one is trained (when
    # every pending seed is held, wait for the first): two workers asking for one kind split its
    # seeds instead of queueing behind each other seed by seed (at `real` one worker trained every
    # run while the other waited). Runs alone do not depend on which process trains them.
    # The free seed is picked at random: two processes that finish a wait at the same moment and
    # both take the first free seed collide again (at `real`, 2026-12-03, the second worker lost
    # that race at every seed and waited out all twenty runs of the default pair).
    keys = {s.key: entry_key(s, engine, _key(bases[s.key])) for s in group}
    pending = [s for s in group if lookup(s, cache, engine, bases[s.key]) is None]
    pick = random.Random(os.getpid())
    while pending:
        free_now = [s for s in pending if not _held_elsewhere(cache, keys[s.key])]
        free = pick.choice(free_now) if free_now else pending[0]
        run = get_or_run(free, cache, progress=progress, base=bases[free.key])  # trains, finds done, or waits
        if after is not None:
            after(run)
        pending = [s for s in pending if lookup(s, cache, engine, bases[s.key]) is None]
    return {s.key: lookup(s, cache, engine, bases[s.key]) for s in group}


def _gone(spec: RunSpec, engine: Engine) -> RunResult:
    raise UplabError(f"run {spec.key[:12]} (stacked with seeds {list(engine.stack)}) was trained but its "
                     "cache entry is gone; was the cache cleared meanwhile? Rerun.")


def _key(base) -> str | None:
    return base.key if isinstance(base, RunResult) else None


def _stack_or_mark(group: list[RunSpec], bases: dict, engine: Engine, cache: Path, progress: bool) -> str | None:
    """Train the group together and commit its missing seeds (None); or, when the kind cannot be
    stacked, say so in a marker every process asking for the kind reads (the reason)."""
    keys = {s.key: entry_key(s, engine, _key(bases[s.key])) for s in group}
    held: list[FileLock] = []
    try:
        # Every lock of the group, in key order, waiting for each: of two processes asking for the
        # group, the one that gets the first lock trains it, the other then finds it done.
        for s in sorted(group, key=lambda x: keys[x.key]):
            lock = FileLock(str(cache / f"{keys[s.key]}.lock"))
            lock.acquire()
            held.append(lock)
            if effective(cache, s, engine) != engine:  # found out by the process we waited for
                return "marked one by one by another process"
        missing = set()
        for s in group:
            entry = cache / keys[s.key]
            if entry.exists():
                defect = _defect(entry)
                if defect is None:  # finished while we looked
                    continue
                warnings.warn(f"cache entry {entry} is corrupt ({defect}); recomputing its group "
                              f"(seeds {list(engine.stack)})", stacklevel=4)
                _remove(entry, cache)
            for debris in cache.glob(f".tmp-{keys[s.key]}-*"):
                shutil.rmtree(debris, ignore_errors=True)
            missing.add(s.key)
        if not missing:
            return None
        mine = sorted(group, key=lambda x: x.seed)
        why, expected = _train_together(mine, bases, engine, keys, missing, cache, progress)
        if why is None:
            return None
        if not expected:  # the stacked forward missed something about this model: say so
            warnings.warn(f"{len(mine)} seeds of run kind {kind_of(mine[0]).key[:12]} train one by one: {why}",
                          stacklevel=4)
        _mark_one_by_one(cache, mine[0], engine, why)
        return why
    finally:
        for lock in held:
            lock.release()


def _mark_one_by_one(cache: Path, spec: RunSpec, engine: Engine, why: str) -> None:
    path = marker(cache, spec, engine)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"seeds": len(engine.stack), "why": why}))
    os.replace(tmp, path)


def _held_elsewhere(cache: Path, key: str) -> bool:
    """Whether another process holds the lock of entry `key` right now (asked without waiting)."""
    lock = FileLock(str(cache / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _train_together(specs: list[RunSpec], bases: dict, engine: Engine, keys: dict, missing: set,
                    cache: Path, progress: bool) -> tuple[str | None, bool]:
    """Train the group as one computation and commit the `missing` entries (every lock is held):
    (None, _); or (why it cannot be stacked, whether that was known before training: a mode,
    precision or size cannot_stack names)."""
    from harness.train.ensemble import cannot_stack, train_many
    from harness.train.stacked import StackMismatch

    started = time.time()
    loaded = []
    for s in specs:
        model = load_base(bases[s.key] if isinstance(s.base, RunSpec) else s.base)
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
    tmps = [Path(tempfile.mkdtemp(prefix=f".tmp-{keys[s.key]}-", dir=cache)) for s in specs]

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
            if s.key not in missing:  # its entry was there: the same computation, the same bits
                shutil.rmtree(t, ignore_errors=True)
                continue
            write_record(t, s, model, metrics, source_layers=source_layers, roles=roles,
                         tokenizer=tok.name, started=started, **_provenance(s, engine, bases[s.key]),
                         stacked_seeds=[x.seed for x in specs])  # trained as one computation with these
            _commit(t, cache / keys[s.key], s, engine)
    except BaseException as e:
        for t in tmps:
            shutil.rmtree(t, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UplabError(f"no space left writing {len(specs)} runs into {cache}; free space "
                             "or choose another cache folder") from None
        raise
    return None, True
