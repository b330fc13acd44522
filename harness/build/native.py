"""The native builder: executes a plan's tensor recipe in memory or streaming to disk."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from tqdm.auto import tqdm

from harness.build.finite import check_finite
from harness.build.recipe import recipe, upscaled_config
from harness.checkpoint import Checkpoint, ShardWriter, copy_side_files, read_config, staged_output
from harness.errors import UplabError
from harness.layermap import LayerMap
from harness.plan import Plan


def _apply(tensor: torch.Tensor, scale: float) -> torch.Tensor:
    # mergekit multiplies only when a scale is set (x * 1.0 == x anyway). The copy keeps every
    # output layer's parameters independent for training, and on disk it detaches the tensor
    # from the source's memory map (safetensors refuses to save tensors that share storage).
    return tensor.clone() if scale == 1.0 else tensor * scale


def upscale_state_dict(state: dict[str, torch.Tensor], plan: Plan, config: dict
                       ) -> tuple[dict[str, torch.Tensor], dict, LayerMap]:
    steps, lm = recipe(plan, list(state), config)
    out = {s.out: _apply(state[s.source], s.scale) for s in steps}
    return out, upscaled_config(config, lm), lm


def upscale_model(model: transformers.PreTrainedModel, plan: Plan) -> transformers.PreTrainedModel:
    """A new in-memory model: the plan applied to `model` (which is left untouched).

    Host memory: the source and the upscale's weights, nothing more. The new model's parameters
    are created on the meta device (no random initialisation to overwrite: at 39B that was a
    third fp32 copy, 156 GB) and take the upscaled tensors themselves (load_state_dict with
    assign=True, no copy); its buffers (RoPE's inv_freq) are computed as usual.
    """
    from accelerate import init_empty_weights

    config = model.config.to_dict()
    state, new_config, _ = upscale_state_dict(model.state_dict(), plan, config)
    cfg = type(model.config).from_dict(new_config)
    cfg._attn_implementation = model.config._attn_implementation
    dtype = next(model.parameters()).dtype
    with init_empty_weights(include_buffers=False):
        new = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    missing, unexpected = new.load_state_dict(state, strict=False, assign=True)
    tied = {"lm_head.weight"} if cfg.tie_word_embeddings else set()
    if unexpected or set(missing) - tied:
        raise UplabError(f"upscaled weights do not fit the model: missing {missing}, unexpected {unexpected}")
    new.tie_weights()
    empty = [n for n, p in new.named_parameters() if p.is_meta]
    if empty:
        raise UplabError(f"upscaled model has parameters without weights: {empty[:3]}")
    return new.to(next(model.parameters()).device).train(model.training)


def upscale_checkpoint(src: str | Path, plan: Plan, out: str | Path, *, force: bool = False,
                       max_shard_bytes: int = 5 * 10**9, progress: bool = True,
                       allow_nonfinite: bool = False) -> LayerMap:
    """Stream `src` through the plan into a new checkpoint directory `out`."""
    src = Path(src)
    config = read_config(src)
    with Checkpoint(src) as reader:
        steps, lm = recipe(plan, reader.listed(), config)
        new_config = upscaled_config(config, lm)
        with staged_output(out, force=force, protect=(src,)) as stage:
            writer = ShardWriter(stage, max_shard_bytes)
            for s in tqdm(steps, desc="upscale (native)", unit="tensor", disable=not progress):
                tensor = reader.read(s.source)
                if not allow_nonfinite:
                    check_finite(s.source, tensor, str(src))
                writer.add(s.out, _apply(tensor, s.scale))
            writer.close()
            (stage / "config.json").write_text(json.dumps(new_config, indent=2, sort_keys=True))
            (stage / "uplab_plan.yml").write_text(plan.text)
            copy_side_files(src, stage)
    return lm
