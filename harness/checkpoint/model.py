"""A model from a state dict and its config, and a file's sha256: shared by the run cache, a
finished run and the real base's conversion."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.errors import UplabError


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_from_state(config, state: dict, what: str):
    """An fp32 causal LM built from `config` holding exactly `state` (a tied lm_head may be absent);
    `what` names the source in the one-line error when the tensors do not fit the config."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    # every weight is overwritten below, so drawing random ones first is wasted (a third of the
    # time a measurement spends building tiny models); buffers are still computed as usual
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if unexpected or set(missing) - tied:
        raise UplabError(f"{what} does not fit its config: missing "
                         f"{sorted(set(missing) - tied)[:3]}, unexpected {unexpected[:3]}")
    model.tie_weights()
    return model.eval()
