"""Data specs: what a run trains on and which held-out sets it is measured on (frozen values)."""

from __future__ import annotations

import json
from typing import Annotated, Literal, Union

from pydantic import Field, model_serializer, model_validator

from harness.data.tasks import HELDOUT_RESERVE
from harness.schema import Frozen


class _Frozen(Frozen):
    def __hash__(self) -> int:  # dict fields are fine: the canonical JSON is the identity
        return hash(json.dumps(self.model_dump(mode="json"), sort_keys=True))


class Synthetic(_Frozen):
    """One generated domain (harness.data.tasks); `size` training examples, `seed` fixes the bytes.

    `replay`: the fraction of the training examples drawn from the original domain's training
    stream instead (the pre-training data replayed, as instruction sets mix general data in),
    spread evenly through the set; held-out sets are never replayed. 0 (the default) leaves the
    spec's JSON, and so every run hash made before the field existed, as it was."""

    kind: Literal["synthetic"] = "synthetic"
    domain: Literal["original", "target", "conflict"]
    size: int = Field(2048, gt=0)
    seed: int = 0
    replay: float = Field(0.0, ge=0, lt=1)

    @model_serializer(mode="wrap")
    def _without_default_replay(self, handler):
        out = handler(self)
        if out.get("replay") == 0:
            del out["replay"]
        return out


class Local(_Frozen):
    """Text (one record a line), jsonl, or a `datasets.save_to_disk` folder, read from a local path.

    Records with `prompt_field` and `completion_field` train on the completion only and score exact
    match; records with `text_field` are packed into `max_len` blocks. Held-out: the dataset's
    `validation`/`test` split when it has one, else the records whose sha1 % 100 < heldout_percent.
    """

    kind: Literal["local"] = "local"
    path: str
    format: Literal["auto", "text", "jsonl", "hf"] = "auto"
    text_field: str = "text"
    prompt_field: str = "prompt"
    completion_field: str = "completion"
    heldout_percent: int = Field(5, ge=1, le=50)
    size: int | None = Field(None, gt=0)  # cap on training examples, None = all


class Text(_Frozen):
    """A real-text domain drawn from the interpreter (harness.data.text: `prose` or `python`),
    pinned by the sha256 of its corpus; packed into `max_len` blocks, every token scored.
    Documents are held out when the sha1 of their name % 100 < heldout_percent. With `draw`, the
    training split is packed whole and `size` of its blocks are drawn at random by that seed
    (without replacement, in corpus order), so each seed fine-tunes on its own sample of the
    domain; held-out splits never depend on it."""

    kind: Literal["text"] = "text"
    domain: Literal["prose", "python", "python-all"]
    sha256: str = Field(min_length=64, max_length=64)
    heldout_percent: int = Field(10, ge=1, le=50)
    size: int | None = Field(None, gt=0)  # cap on training blocks, None = all
    draw: int | None = Field(None, ge=0)  # seed of the training blocks' sample; None: the first `size`

    @model_validator(mode="after")
    def _draw_needs_size(self):
        if self.draw is not None and self.size is None:
            raise ValueError("draw samples `size` training blocks: give size too")
        return self

    @classmethod
    def of(cls, domain: str, **kw) -> "Text":
        """The domain as this interpreter has it (its corpus hash computed here)."""
        from harness.data.text import corpus_sha256

        return cls(domain=domain, sha256=corpus_sha256(domain), **kw)


Source = Annotated[Union[Synthetic, Local, Text], Field(discriminator="kind")]


def _both_domains() -> dict:
    return {"original": Synthetic(domain="original"), "target": Synthetic(domain="target")}


class DataSpec(_Frozen):
    """Training source, named held-out sets, and how examples become batches."""

    train: Source
    evals: dict[str, Source] = Field(default_factory=_both_domains)
    eval_size: int = Field(256, gt=0)  # held-out examples per eval set
    batch_size: int = Field(32, gt=0)
    max_len: int = Field(64, ge=8)  # longer examples are truncated; text is packed to this
    train_on: Literal["answer", "all"] = "answer"  # loss on the answer only, or on every token

    @model_validator(mode="after")
    def _eval_size_fits(self):
        if any(isinstance(s, Synthetic) for s in self.evals.values()) and self.eval_size > HELDOUT_RESERVE:
            raise ValueError(f"eval_size {self.eval_size} exceeds the {HELDOUT_RESERVE} held-out "
                             "prompts kept out of synthetic training data")
        return self

    @classmethod
    def synthetic(cls, domain: str, size: int = 2048, seed: int = 0, replay: float = 0.0, **kw) -> "DataSpec":
        """Train on one generated domain; measure on the original's and a target's held-out splits
        (same seed), named "original" and "target" whichever target it is: a fine-tune on
        "conflict" is scored on the conflicting domain under the name "target". `replay`: the
        fraction of training examples replayed from the original domain (Synthetic.replay)."""
        target = domain if domain != "original" else "target"
        evals = {"original": Synthetic(domain="original", seed=seed), "target": Synthetic(domain=target, seed=seed)}
        return cls(train=Synthetic(domain=domain, size=size, seed=seed, replay=replay), evals=evals, **kw)
