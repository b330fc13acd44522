"""The diff kernel: per-tensor sums ‖W₀‖², ⟨W₀, ΔW⟩, ‖ΔW‖², Σ|ΔW| over bounded chunks, computed by a
few threads and consumed in order (the numerics are in harness.measure.deltas' docstring)."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from harness.errors import UplabError
from harness.measure.rows import DeltaRow
from harness.measure.sides import Side

CHUNK_ELEMS = 1 << 18  # 1 MiB of float32 per operand: each chunk's passes stay in L2/L3 cache


class _Scratch:
    """One worker's buffers, per working dtype: the cast W₀ and ΔW, reused from chunk to chunk."""

    def __init__(self) -> None:
        self.bufs: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    def get(self, slot: int, n: int, dtype: torch.dtype) -> torch.Tensor:
        buf = self.bufs.get((slot, dtype))
        if buf is None or buf.numel() < n:
            buf = self.bufs[(slot, dtype)] = torch.empty(n, dtype=dtype)
        return buf[:n]


def _chunk_sums(a: torch.Tensor, b: torch.Tensor, scratch: _Scratch):
    """(‖a‖², ⟨a, b−a⟩, ‖b−a‖², Σ|b−a|) of two 1-D chunks, in float32 or float64.

    The inputs are only read (they may be views of a file's memory map or the caller's tensors).
    W₀ is always copied into the scratch buffer, even when no cast is needed: reductions over
    memory of a different alignment sum in a different order, and the rows should not change in
    the last bit with how a checkpoint happens to be sharded.
    """
    work = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    n = a.numel()
    a = scratch.get(0, n, work).copy_(a)
    d = scratch.get(1, n, work)
    if b.dtype == work:
        torch.sub(b, a, out=d)
    else:
        d.copy_(b)
        d.sub_(a)
    aa = torch.dot(a, a).item()
    ad = torch.dot(a, d).item()
    dd = torch.dot(d, d).item()
    l1 = d.abs_().sum().item()
    return aa, ad, dd, l1


def _tensor_sums(a: Side, b: Side, name: str, chunk_elems: int, scratch: _Scratch) -> Sums:
    out = Sums()
    for ca, cb in zip(a.chunks(name, chunk_elems), b.chunks(name, chunk_elems), strict=True):
        aa, ad, dd, l1 = _chunk_sums(ca, cb, scratch)
        if not math.isfinite(aa + ad + dd + l1):
            side = a if not math.isfinite(aa) else b
            raise UplabError(
                f"{name} in {side.label} has NaN or Inf values; the checkpoint is broken "
                "(re-save it, or take an earlier snapshot of the run)"
            )
        out.add(Sums(ca.numel(), aa, ad, dd, l1))
    return out


def map_tensors(a: Side, b: Side, names: list[str], chunk_elems: int,
                 workers: int | None) -> Iterator[Sums]:
    """Each tensor's sums, in the order of `names`, computed by `workers` threads.

    torch's own intra-op threads would split every small chunk across cores and wait at a
    barrier per op; on a busy machine those waits dominate (measured on 2 shared cores: 10x
    slower, burning CPU while spinning). Instead each worker runs torch single-threaded (a
    thread-local setting; the global default is put back afterwards) on whole tensors, and
    results are consumed in order, so the accumulation order, and thus every bit of the result,
    does not depend on `workers`.
    """
    n = max(1, min(8, workers or torch.get_num_threads()))
    threads_before = torch.get_num_threads()
    if n == 1:
        scratch = _Scratch()
        torch.set_num_threads(1)
        try:
            for name in names:
                yield _tensor_sums(a, b, name, chunk_elems, scratch)
        finally:
            torch.set_num_threads(threads_before)
        return
    local = threading.local()

    def job(name: str) -> Sums:
        if not hasattr(local, "scratch"):
            torch.set_num_threads(1)
            local.scratch = _Scratch()
        return _tensor_sums(a, b, name, chunk_elems, local.scratch)

    pool = ThreadPoolExecutor(n, thread_name_prefix="uplab-diff")
    try:
        # a bounded window of tensors in flight keeps results small and ordered
        window = deque(pool.submit(job, name) for name in names[: 2 * n])
        rest = iter(names[2 * n:])
        while window:
            result = window.popleft().result()
            nxt = next(rest, None)
            if nxt is not None:
                window.append(pool.submit(job, nxt))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads_before)  # the setting's global default, as it was


@dataclass
class Sums:
    n: int = 0
    aa: float = 0.0
    ad: float = 0.0
    dd: float = 0.0
    l1: float = 0.0

    def add(self, other: Sums) -> None:
        self.n += other.n
        self.aa += other.aa
        self.ad += other.ad
        self.dd += other.dd
        self.l1 += other.l1

    def row(self, layer: int | None, module: str) -> DeltaRow:
        na = math.sqrt(self.aa)
        bb = max(self.aa + 2 * self.ad + self.dd, 0.0)
        nb = math.sqrt(bb)
        l2 = math.sqrt(self.dd)
        cos = None
        if na > 0 and nb > 0:
            gap = (2 * self.ad + self.dd) / (na + nb)  # ‖W₁‖ − ‖W₀‖ without cancellation
            cos = min(max((self.dd - gap * gap) / (2 * na * nb), 0.0), 2.0)
        return DeltaRow(
            layer=layer, module=module, l2=l2, rel=l2 / na if na > 0 else None,
            mean_abs=self.l1 / self.n if self.n else 0.0, cos=cos,
            numel=self.n, norm_base=na, norm_tuned=nb,
        )
