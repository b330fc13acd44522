"""GPU memory a fine-tune needs, per mode and number of GPUs, from a config.json and a plan.

Arithmetic on hyperparameters only: no model is built. Every term follows what the code really
does (docs/scale.md derives each one and lists what is assumed):
- one process: the weights in fp32 (runner.load_base loads fp32), bf16 autocast, AdamW, no
  activation checkpointing (harness.train.loop);
- FSDP, `accelerate launch` with configs/fsdp.yaml: FULL_SHARD of fp32 flat parameters over G
  ranks, bf16 compute copies, every decoder layer recomputed in backward, each rank taking
  ceil(B/G) of a batch's B rows.
The activation bytes per token are the tensors autograd saves, term by term; tests/test_resources
measures them on a tiny model and requires the same number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from harness import arch as arch_facts
from harness.dims import Dims, param_count  # noqa: F401  (param_count: part of this API)
from harness.errors import UplabError
from harness.train.modes import Freeze, Full, Lora, Mode

GIB = 2**30
USABLE = 0.9  # of a GPU's memory: the caching allocator's fragmentation and reserved memory
OVERHEAD = 2 * GIB  # per GPU: CUDA context, cuBLAS and NCCL workspaces
MAX_GPUS = 64  # the search stops here (eight 8-GPU nodes); beyond it the answer is "> 64"
# Marketed capacities; a card reports a little less (an H100 80GB: ~79.6 GiB), which USABLE covers.
GPUS = {"A100 40GB": 40, "A100 80GB": 80, "H100 80GB": 80, "H200 141GB": 141}
LOGIT_GRAD = 6  # bytes per logit in backward: the fp32 gradient of the logits and its bf16 cast
EVAL_LOGITS = 10  # bytes per logit when scoring: bf16 logits, their fp32 copy, log-softmax

@dataclass(frozen=True)
class Trainable:
    """What trains: per layer its base weights and its LoRA targets; the root (embeddings, norm, lm_head)."""

    base: tuple[bool, ...]
    lora: tuple[tuple[str, ...], ...]
    r: int
    root: bool

    @classmethod
    def of(cls, mode: Mode, layers: int) -> "Trainable":
        picked = getattr(mode, "layers", None) or ()
        bad = [j for j in picked if not 0 <= j < layers]
        if bad:
            raise UplabError(f"{mode.kind} layers {bad} are outside the model's {layers} layers (0..{layers - 1})")
        if isinstance(mode, Full):
            return cls((True,) * layers, ((),) * layers, 0, True)
        if isinstance(mode, Lora):
            chosen = set(mode.layers) if mode.layers else set(range(layers))
            return cls((False,) * layers, tuple(tuple(mode.targets) if j in chosen else () for j in range(layers)),
                       mode.r, False)
        if isinstance(mode, Freeze):
            t = cls(tuple(j not in set(mode.layers) for j in range(layers)), ((),) * layers, 0, not mode.embeddings)
            if not any(t.base) and not t.root:
                raise UplabError(f"mode {mode!r} leaves no parameter to train; freeze fewer layers")
            return t
        raise UplabError(f"unknown training mode {mode!r}")

    def trains(self, j: int) -> bool:
        return self.base[j] or bool(self.lora[j])

    def grad_path(self) -> list[tuple[int, bool]]:
        """(layer, does its input need grad) for every layer whose activations autograd keeps."""
        out, flows = [], self.root  # a trainable embedding makes every activation need grad
        for j in range(len(self.base)):
            if flows or self.trains(j):
                out.append((j, flows))
            flows = flows or self.trains(j)
        return out


def lora_params(d: Dims, t: Trainable, j: int) -> int:
    dims = d.modules()
    return sum(t.r * (dims[m][0] + dims[m][1]) for m in t.lora[j])


def trainable_params(d: Dims, t: Trainable) -> int:
    layers = sum(d.layer_params() for j in range(d.layers) if t.base[j])
    return layers + t.root * d.root_params() + sum(lora_params(d, t, j) for j in range(d.layers))


def layer_activation(d: Dims, *, bf16_weights: bool, base: bool, lora: tuple[str, ...], r: int,
                     input_grad: bool = True) -> int:
    """Bytes per token that one decoder layer leaves for backward (no recompute).

    bf16_weights: FSDP's bf16 compute copies (a bf16 residual stream); else autocast over fp32
    weights (an fp32 residual stream). base: the layer's own weights train. lora: its adapted
    modules. input_grad: the layer's input needs grad (false below the first trainable layer).
    """
    h, i, a = d.hidden, d.intermediate, d.heads
    q, kv = d.heads * d.head_dim, d.kv_heads * d.head_dim
    # RMSNorm keeps its fp32 input and 1/rms; its normalised output only for its own weight's grad.
    norm_y = (2 if bf16_weights else 4) * h if base else 0
    norms = 2 * (4 * h + 4 + norm_y) - (0 if input_grad else 4 * h + 4)
    sdpa = 2 * q + 4 * kv + 2 * q + 4 * a  # flash/efficient SDPA keeps q, k, v, out (bf16) and fp32 logsumexp
    swiglu = 6 * i  # silu's input, silu's output and up's output (both operands of the product)
    lora = tuple(lora)
    if bf16_weights:
        # One bf16 tensor feeds q/k/v (another gate/up): kept once if any consumer needs it;
        # o_proj reads the SDPA output already kept.
        attn_in = 2 * h if base or {"q_proj", "k_proj", "v_proj"} & set(lora) else 0
        mlp_in = 2 * h if base or {"gate_proj", "up_proj"} & set(lora) else 0
        inputs = attn_in + mlp_in + (2 * i if base or "down_proj" in lora else 0)
    else:
        # Autocast casts the fp32 normed input anew for each linear (q, k, v, gate, up); down reads
        # the bf16 product, o the SDPA output. peft upcasts a LoRA input to fp32 first, so each
        # adapter keeps its own bf16 copy.
        inputs = (5 * 2 * h + 2 * i) if base else 0
        inputs += sum(2 * d.modules()[m][0] for m in lora)
    inputs += 2 * r * len(lora)  # lora_B's input: lora_A's bf16 output
    return norms + sdpa + swiglu + inputs


def head_activation(d: Dims, *, bf16_weights: bool, root: bool) -> int:
    """Bytes per token kept by the final norm, lm_head and the loss."""
    out = 4 * d.hidden + 4 + 4 * d.vocab + 8  # final norm's fp32 input and 1/rms; fp32 logits; labels
    if root:
        out += (2 if bf16_weights else 4) * d.hidden  # normed output, for the norm weight's grad
        out += 2 * d.hidden  # lm_head's bf16 input, for its weight's grad
        out += 8  # token ids, for the embedding's grad
    return out


def saved_per_token(d: Dims, t: Trainable, *, bf16_weights: bool) -> int:
    """Everything autograd keeps per token at the end of the forward pass, without recompute."""
    layers = sum(layer_activation(d, bf16_weights=bf16_weights, base=t.base[j], lora=t.lora[j], r=t.r,
                                  input_grad=g) for j, g in t.grad_path())
    return layers + head_activation(d, bf16_weights=bf16_weights, root=t.root)


def autocast_copies(d: Dims, t: Trainable) -> int:
    """Bytes of the bf16 weight copies autocast holds at the end of the forward pass (one process).

    Backward keeps a linear's bf16 weight to pass the gradient to its input, and autocast caches
    the copy of every trainable weight until the forward ends: so every linear on the gradient
    path, lm_head and the adapters. The exception is a frozen q/k/v whose input needs no grad
    (the first LoRA layer's).
    """
    dims = d.modules()
    path = t.grad_path()
    total = sum(d.linear_params() + lora_params(d, t, j) for j, _ in path) + d.vocab * d.hidden
    if path and not path[0][1] and not t.base[path[0][0]]:
        total -= sum(a * b for m, (a, b) in dims.items() if m in ("q_proj", "k_proj", "v_proj"))
    return 2 * total


def recompute_per_token(d: Dims, t: Trainable) -> int:
    """With every decoder layer checkpointed (FSDP config): each keeps its bf16 input, and in
    backward one layer at a time holds its recomputed activations."""
    path = t.grad_path()
    one = max((layer_activation(d, bf16_weights=True, base=t.base[j], lora=t.lora[j], r=t.r, input_grad=g)
               for j, g in path), default=0)
    return len(path) * 2 * d.hidden + one + head_activation(d, bf16_weights=True, root=t.root)


@dataclass(frozen=True)
class Estimate:
    """Peak memory per GPU of one training setup, by term (bytes)."""

    gpus: int
    fsdp: bool
    parts: tuple[tuple[str, int], ...]  # the training step's peak
    eval_bytes: int  # the held-out scoring's peak (the loop scores whole batches at snapshots)
    host_bytes: int  # host memory of all processes together: each loads the fp32 model (and its base, when a plan is applied in memory)

    @property
    def total(self) -> int:
        return max(sum(b for _, b in self.parts), self.eval_bytes)

    def fits(self, gpu_bytes: float) -> bool:
        return self.total <= USABLE * gpu_bytes

    def label(self) -> str:
        return f"{self.gpus} × FSDP" if self.fsdp else "1"


def host_load(params: int, base_params: int = 0) -> int:
    """Host bytes of loading a model in one process (harness.runs.runner): the fp32 model; when a
    plan is applied in memory, the fp32 base too, alive beside its upscale until the upscale is
    built (harness.build.native.upscale_model creates no third copy: it initialises on the meta
    device and takes the upscaled tensors as they are)."""
    return 4 * (params + base_params)


def estimate(d: Dims, t: Trainable, *, gpus: int, fsdp: bool, seq_len: int, batch: int,
             base_params: int = 0) -> Estimate:
    """Per-GPU peak of a fine-tune over `gpus` GPUs (fsdp=False: one process, one GPU).

    base_params: the parameters of the base a plan is applied to in memory (0: the model is
    loaded as it is, e.g. an upscale built on disk first)."""
    if not fsdp and gpus != 1:
        raise ValueError("without FSDP a run is one process on one GPU")
    n_lora = sum(lora_params(d, t, j) for j in range(d.layers))
    n_all, n_train = d.params() + n_lora, trainable_params(d, t)
    scoring = batch * seq_len * EVAL_LOGITS * d.vocab
    if not fsdp:
        act = batch * seq_len * (saved_per_token(d, t, bf16_weights=False) + LOGIT_GRAD * d.vocab)
        parts = (("weights", 4 * n_all), ("grads", 4 * n_train), ("adam", 8 * n_train),
                 ("bf16 copies", autocast_copies(d, t)), ("activations", act), ("overhead", OVERHEAD))
        return Estimate(1, False, parts, 4 * n_all + 8 * n_train + scoring + OVERHEAD,
                        host_load(n_all, base_params))
    g = gpus
    # FSDP1 keeps a gradient for a whole flat parameter (one per decoder layer, one root) as soon
    # as any parameter in it trains: frozen weights in a LoRA layer get one too.
    unit = [d.layer_params() + lora_params(d, t, j) for j in range(d.layers)]
    with_grad = sum(u for j, u in enumerate(unit) if t.trains(j)) + t.root * d.root_params()
    # The root stays gathered from forward to backward; two layers are in flight (one prefetched),
    # each as bf16 parameters plus bf16 unsharded gradients.
    gathered = 2 * d.root_params() + 2 * (2 + 2) * max(unit)
    rows = math.ceil(batch / g)
    act = rows * seq_len * (recompute_per_token(d, t) + LOGIT_GRAD * d.vocab)
    weights, adam = math.ceil(4 * n_all / g), math.ceil(8 * n_train / g)
    parts = (("weights", weights), ("grads", math.ceil(4 * with_grad / g)), ("adam", adam),
             ("gathered", gathered), ("activations", act), ("overhead", OVERHEAD))
    # Every rank loads the whole fp32 model on the host before FSDP shards it (and the base
    # beside it when a plan is applied in memory; get_or_launch builds a plan on disk first).
    return Estimate(g, True, parts, weights + adam + gathered + scoring + OVERHEAD,
                    g * host_load(n_all, base_params))


def min_gpus(d: Dims, t: Trainable, gpu_bytes: float, *, seq_len: int, batch: int,
             max_gpus: int = MAX_GPUS) -> Estimate | None:
    """The fewest GPUs of `gpu_bytes` that hold the run: one process if it fits, else the
    smallest FSDP world size; None when even `max_gpus` are not enough."""
    single = estimate(d, t, gpus=1, fsdp=False, seq_len=seq_len, batch=batch)
    if single.fits(gpu_bytes):
        return single
    # Every FSDP term is non-increasing in G, so the first fit is the minimum.
    for g in range(1, max_gpus + 1):
        e = estimate(d, t, gpus=g, fsdp=True, seq_len=seq_len, batch=batch)
        if e.fits(gpu_bytes):
            return e
    return None


# ---- configs, presets and plans -------------------------------------------------------------

def load_config(source: str) -> tuple[dict, str]:
    """(config dict, label) of a config.json path, a checkpoint folder, or a preset name."""
    from harness import tiny

    if source in tiny.PRESETS:
        return tiny.preset(source).hf_config().to_dict(), f"preset {source}"
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise UplabError(f"{source}: no such config file or preset; pass a config.json, a checkpoint "
                         f"folder, or a preset ({', '.join(tiny.PRESETS)})")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UplabError(f"{path}: not a JSON config ({e.__class__.__name__}); pass an HF config.json") from None
    if not isinstance(config, dict):
        raise UplabError(f"{path}: expected a JSON object (an HF config.json)")
    return config, str(source)


def upscale(config: dict, plan, origin: str = "config"):
    """(config of the upscaled model, its layer map): depth from the plan's own layer map."""
    from harness.plan import check_depth

    d = Dims.from_config(config, origin)
    check_depth(plan, d.layers)
    lm = plan.layer_map(d.layers, d.model_type)
    key = arch_facts.get(d.model_type).layers_key
    return {**config, key: lm.num_layers}, lm


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"
