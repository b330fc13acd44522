"""The `real` scale: one real pretrained base (SmolLM2-135M-Instruct by default), fine-tuned on real
text on a CPU.

The base is the same for every seed (it was trained elsewhere); a seed varies the data order and
LoRA's init, nothing else. The original domain is English prose the base already knows (the
Python language reference's paragraphs), the target domain is Python source (the standard
library's modules): harness.data.text, pinned by hash. Every fine-tune is short enough for a
nightly CPU job (docs/real.md has the measured step times and the budget).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from harness.claims.settings import Setting
from harness.data import DataSpec
from harness.data.spec import Text
from harness.runs.spec import LocalBase

# One fine-tune at `real`, sized for 2 CPU threads (docs/real.md): batches of 2 blocks of 128
# tokens; an epoch is 24 steps (48 blocks, ~6k tokens of Python source). lr 1e-4 with AdamW moves
# a 135M model's weights visibly within an epoch without wrecking the prose it knows.
REAL_BATCH, REAL_LEN, REAL_EPOCH_STEPS = 2, 128, 24
REAL_FINETUNE = dict(lr=1e-4, epochs=1)
# Held-out blocks per domain and snapshot: scoring 2 x 24 blocks and writing the snapshot cost
# ~30 CPU s on the 54-layer upscale (about 6 training steps; docs/real.md), and the loss over
# 24 x 127 tokens has a small standard error next to the differences the claims compare.
REAL_EVAL_SIZE = 24
# Step 0 (the weights a delta is taken from); the last step and every epoch end are always kept.
# Disk, not time, binds here: a snapshot of the 54-layer upscale is 0.88 GB in fp32 (the 30-layer
# base 0.54 GB), so a run is ~1.1-1.8 GB; a claim that needs a trajectory asks for its own steps.
REAL_SNAPSHOTS = (0,)
# The prose is never trained on at `real`, so more of it is held out: ~100 blocks to score on.
PROSE_HELDOUT, PYTHON_HELDOUT = 30, 10


def real_data() -> DataSpec:
    """Train on Python source; score on held-out Python source (target) and prose (original)."""
    target = Text.of("python", heldout_percent=PYTHON_HELDOUT, size=REAL_EPOCH_STEPS * REAL_BATCH)
    original = Text.of("prose", heldout_percent=PROSE_HELDOUT)
    return DataSpec(train=target, evals={"original": original, "target": target},
                    eval_size=REAL_EVAL_SIZE, batch_size=REAL_BATCH, max_len=REAL_LEN, train_on="all")


@lru_cache(maxsize=None)
def _converted(cache: Path) -> Path:
    from harness.real import real_base

    return real_base(cache)


def real_setting(base_model: Path | None = None, cache: Path | None = None) -> Setting:
    """`real` with SmolLM2-135M-Instruct (converted once into `cache`), or any local HF folder."""
    from harness.checkpoint import read_config
    from harness.runs.cache import default_cache_dir

    if base_model is None:
        base_model = _converted(Path(cache) if cache is not None else default_cache_dir())
    config = read_config(Path(base_model))  # one line naming the problem when it is not a checkpoint
    checkpoint = LocalBase(path=str(base_model))
    return Setting("real", config["num_hidden_layers"], config.get("model_type", "llama"),
                   lambda seed: checkpoint,
                   finetune={"data": real_data(), "snapshots": REAL_SNAPSHOTS, **REAL_FINETUNE},
                   domains=("original", "target"), epoch=REAL_EPOCH_STEPS)


def use_cpu_threads() -> None:
    """Two threads for one process (the nightly machine has 2 cores); under xdist the workers
    share the cores (`settings.cpu_threads`)."""
    import os

    import torch

    from harness.claims.settings import cpu_threads

    threads = cpu_threads()
    torch.set_num_threads(threads if os.environ.get("PYTEST_XDIST_WORKER") else min(2, threads))
