"""Run specs: frozen values with a content hash; a base is itself a spec (or a local path).

The hash is sha256 over canonical JSON (sorted keys, no spaces, every field including defaults,
plus SCHEMA and the synthetic data's tasks.VERSION), except fields added after the first cache
entries, which serialize only when they differ from their default (`_LATER`), so that adding one
orphans no cached run. Bump SCHEMA when the meaning of a field or
the training code's results change, so old cache entries are no longer found. Local paths are
hashed as strings: a checkpoint or dataset rewritten in place keeps its hash (give it a new
path, or a new cache).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal, Union

from pydantic import Field, PlainSerializer, PlainValidator, ValidationError, model_serializer, model_validator

from harness.data import tasks
from harness.data.spec import DataSpec
from harness.plan import Plan, parse_plan
from harness.schema import Frozen, invalid
from harness.train.modes import Freeze, Full, Lora

# /2: the stacked forward trains with SDPA's math kernel on the CPU (harness.train.stacked._attention_kernel)
SCHEMA = "uplab.run/2"
# Fields added after cache entries existed, with their defaults: absent from a spec's JSON at the default.
_LATER = {"optimizer": "adamw", "scores": "snapshots"}

# Defaults of the tiny scale, in one place (numbers: tests/test_data_learnable.py and
# docs/tiny-world.md). Pre-training the 10-layer, width-16 preset on two-op compositions: all 12
# seeds reach held-out exact match 1.0 on the original domain in 1200 steps (at 16 layers, at 800
# one seed of six had not), ~150 s for 12 stacked seeds on one core.
_BATCH = DataSpec.model_fields["batch_size"].default  # every scale keeps DataSpec's batch size
TINY_PRETRAIN = dict(steps=1200, lr=3e-3, data_size=1200 * _BATCH)
# Fine-tune (tasks of issue 26, docs/tiny-world.md "The card's regime" and "Kernels and the
# recipe's margin"): two epochs of 64 steps over a fixed set of 2048 examples, half of them
# replayed from pre-training (as instruction sets mix general data in), at peak lr 6e-3 after a
# linear warm-up of 40 steps, 2 / (1 - beta2) for AdamW's beta2 = 0.95 (Ma & Yarats' rule: the
# first steps' gradients are 10-200x their later norm while the base is certain and wrong on the
# target, and a 6-step warm-up let them wreck the original on 1-2 seeds in 12 of every fresh draw
# of the bases). On three draws of the 12 bases (three CPU kernel sets) the normal and the
# contiguous fine-tune learn the target (held-out exact match >= 0.94), keep the original
# (>= 0.93) and refill the copies' zeroed modules to >= 0.356 of their source's norm. RunSpec's
# own lr default is this one.
_EPOCH = 64
_WARMUP_STEPS = 40
TINY_FINETUNE = dict(epochs=2, lr=6e-3, steps_per_epoch=_EPOCH, data_size=_EPOCH * _BATCH, replay=0.5,
                     warmup=_WARMUP_STEPS / (2 * _EPOCH))
# The recipes of the scales that fine-tune a pretrained or wider model keep the short warm-up
# they were sized with.
SHORT_WARMUP = 0.05


class Scratch(Frozen):
    """A freshly initialised tiny preset (harness.tiny.build(preset, seed))."""

    kind: Literal["scratch"] = "scratch"
    preset: str = "tiny"
    seed: int = 0


class LocalBase(Frozen):
    """An HF checkpoint in a local folder; its tokenizer is read from the same folder."""

    kind: Literal["path"] = "path"
    path: str


ModeField = Annotated[Union[Full, Lora, Freeze], Field(discriminator="kind")]


def _plan(value) -> Plan | None:
    """A Plan as given; YAML text (a spec read back from JSON) is parsed into one."""
    if value is None or isinstance(value, Plan):
        return value
    if isinstance(value, str):
        return parse_plan(value, origin="run spec plan")
    raise ValueError(f"expected a Plan or mergekit passthrough YAML, got {type(value).__name__}")


# In the spec a plan is a value; its text is its identity, so only the JSON (the hash) holds text.
PlanField = Annotated[Plan | None, PlainValidator(_plan),
                      PlainSerializer(lambda plan: None if plan is None else plan.text)]


class RunSpec(Frozen):
    """Everything that decides a run's weights and metrics. Defaults: a tiny fine-tune."""

    kind: Literal["run"] = "run"
    base: Annotated[Union[Scratch, LocalBase, "RunSpec"], Field(discriminator="kind")]
    plan: PlanField = None  # the upscale applied to the base before training
    data: DataSpec
    mode: ModeField = Full()
    steps: int | None = Field(None, gt=0)  # optimizer steps; exactly one of steps / epochs
    epochs: int | None = Field(None, gt=0)
    lr: float = Field(TINY_FINETUNE["lr"], gt=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup: float = Field(SHORT_WARMUP, ge=0, lt=1)  # fraction of the steps with linear warmup
    min_lr: float = Field(0.1, ge=0, le=1)  # cosine ends at min_lr * lr
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    seed: int = 0  # data order, LoRA init; the base carries its own
    snapshots: tuple[int, ...] = ()  # extra snapshot steps (0 = before training); the last is always saved
    snapshot_epochs: bool = True  # also snapshot at every epoch end
    track: tuple[str, ...] = ()  # fnmatch patterns of tensors whose weight and grad norm are logged per step
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: fp32 on CPU, bf16 autocast on GPU
    optimizer: Literal["adamw", "sgd"] = "adamw"  # harness.train.optimizer; sgd: the fill claims' control arm
    # Held-out sets scored at every snapshot, or (`ends`) at step 0 and the last step only, for a
    # kind no measure reads in between (harness.claims.lab); its snapshots are written all the same.
    scores: Literal["snapshots", "ends"] = "snapshots"

    @model_validator(mode="after")
    def _one_length(self):
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of steps and epochs")
        if any(s < 0 for s in self.snapshots):
            raise ValueError("snapshot steps must be >= 0")
        return self

    @model_serializer(mode="wrap")
    def _without_later_defaults(self, handler):
        out = handler(self)
        for name, default in _LATER.items():
            if out.get(name) == default:
                del out[name]
        return out

    def canonical(self) -> str:
        """Canonical JSON: the identity the hash is taken over."""
        body = {"schema": SCHEMA, "tasks": tasks.VERSION, "spec": self.model_dump(mode="json")}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def __hash__(self) -> int:
        return hash(self.key)

    def root(self) -> Scratch | LocalBase:
        """The non-run base at the bottom of the chain."""
        return self.base.root() if isinstance(self.base, RunSpec) else self.base

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        raw = json.loads(text)
        return cls.model_validate(raw.get("spec", raw))


RunSpec.model_rebuild()


def make(**fields) -> RunSpec:
    """RunSpec(**fields), with an invalid field reported as one UplabError line naming it."""
    try:
        return RunSpec(**fields)
    except ValidationError as e:
        raise invalid(e, "invalid run spec at ", where="spec") from None


# The `small` scale (16-layer presets, one GPU): the same domains and fine-tune length as tiny, so
# the claims read the same; learning rates lowered for the ~100x larger models (wider layers take
# smaller steps). Not yet tuned on a GPU: the first `-m gpu` run records what they reach.
SMALL_PRETRAIN = dict(steps=400, lr=1e-3, data=DataSpec.synthetic("original", size=400 * _BATCH))
SMALL_FINETUNE = dict(lr=1e-4, warmup=SHORT_WARMUP)


def tiny_base(seed: int = 0, preset: str = "tiny", **overrides) -> RunSpec:
    """Pre-train a tiny preset from scratch on the original domain (seed: init and data order)."""
    fields = dict(base=Scratch(preset=preset, seed=seed), seed=seed, steps=TINY_PRETRAIN["steps"],
                  lr=TINY_PRETRAIN["lr"], snapshots=(0,), snapshot_epochs=False,
                  data=DataSpec.synthetic("original", size=TINY_PRETRAIN["data_size"]))
    return make(**{**fields, **overrides})


def tiny_target_data(domain: str = "target") -> DataSpec:
    """The default fine-tune's data on a synthetic target domain: TINY_FINETUNE's set size, and
    its replayed share of original examples, except on "conflict", the named condition whose
    point is forced erasure, which replays nothing."""
    replay = 0.0 if domain == "conflict" else TINY_FINETUNE["replay"]
    return DataSpec.synthetic(domain, size=TINY_FINETUNE["data_size"], replay=replay)


def finetune(base: RunSpec | Scratch | LocalBase, plan: Plan | None = None, seed: int | None = None,
             **overrides) -> RunSpec:
    """Fine-tune `base` (after `plan`, if any) on the target domain; seed defaults to the base's."""
    if seed is None:
        seed = getattr(base, "seed", 0)
    fields = dict(base=base, plan=plan, seed=seed, epochs=TINY_FINETUNE["epochs"],
                  warmup=TINY_FINETUNE["warmup"], snapshots=(0,), data=tiny_target_data("target"))
    if "steps" in overrides:
        fields.pop("epochs")
    return make(**{**fields, **overrides})
