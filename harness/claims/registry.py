"""The claim registry (the protocol) as frozen values: `load()` reads `registry.yaml` once.

A `Case` is everything that decides one result: metric, unit, direction, test kind, sesoi. A
secondary case inherits whatever it does not override from the primary. `protocol_hash` is the
identity of a claim's primary protocol; baselines store it, so that an edit to a primary after
results exist shows up (and needs a dated deviation).
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import UplabError, yaml_problem

REGISTRY = Path(__file__).with_name("registry.yaml")
SCALES = ("tiny", "small", "full", "real")
TESTS = ("superiority", "non-inferiority", "equivalence")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Case(_Frozen):
    """How one case of a claim is decided."""

    case: str = Field(min_length=1)
    metric: str
    unit: str
    direction: Literal["greater", "less"]
    test: Literal["superiority", "non-inferiority", "equivalence"]
    sesoi: float = Field(gt=0, allow_inf_nan=False)
    sesoi_why: str = Field(min_length=10)
    primary: bool = True
    why: str = ""  # a secondary case: why it is looked at
    target: str = "target"  # the fine-tune's target domain (the registry's `targets` say why)

    @property
    def one_sided(self) -> bool:
        return self.test != "equivalence"


class Secondary(_Frozen):
    """An exploratory case: overrides of the primary's fields, and why it is looked at."""

    case: str = Field(min_length=1)
    why: str = Field(min_length=5)
    metric: str | None = None
    unit: str | None = None
    direction: Literal["greater", "less"] | None = None
    test: Literal["superiority", "non-inferiority", "equivalence"] | None = None
    sesoi: float | None = Field(None, gt=0, allow_inf_nan=False)
    sesoi_why: str | None = None
    target: str | None = None


class Deviation(_Frozen):
    """A dated change to a registered protocol: what it was, what it is, why."""

    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    field: str
    old: str
    new: str
    why: str = Field(min_length=10)
    restored: bool = False  # the change undoes an earlier unregistered change


class Threshold(_Frozen):
    """A regime check's metric and the threshold a seed must reach, with its justification."""

    metric: str = Field(min_length=5)
    at_least: float | None = None
    at_most: float | None = None
    why: str = Field(min_length=10)

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least and at_most")
        bound = self.at_least if self.at_least is not None else self.at_most
        if not math.isfinite(bound):
            raise ValueError(f"a threshold must be finite, got {bound!r}")
        return self


class RegimeCheck(Threshold):
    """A regime check (harness.claims.regime): its exact-match form, and the form for free text."""

    text: Threshold | None = None  # the form on domains without exact answers (real text)


class WithinForm(_Frozen):
    """A claim's one-run form: how it is decided from one fine-tune trained elsewhere (a manifest
    of checkpoints, `--checkpoints`), registered before any manifest result. Layers, slices or
    fine-tunes become the units; `unit` names them and says how the effective n is counted."""

    metric: str = Field(min_length=20)
    unit: str = Field(min_length=5)
    needs: str | None = None  # what the manifest must hold beyond one upscale run, and why


class Entry(_Frozen):
    """One claim of the registry."""

    id: str
    card: str = Field(min_length=5)
    statement: str = Field(min_length=5)
    module: str
    primary: Case
    controls: tuple[str, ...] = ()
    secondary: tuple[Secondary, ...] = ()
    scales: tuple[Literal["tiny", "small", "full", "real"], ...]
    within: WithinForm | None = None  # the one-run form, where the claim has one
    notes: dict[str, str] = {}
    deviations: tuple[Deviation, ...] = ()
    # regime checks (the registry's `regime_checks`) its runs must pass for a verdict to mean anything
    regime: tuple[str, ...] = ()
    construction: str = Field(min_length=20)  # why the primary cannot hold (or fail) by construction

    @field_validator("within", mode="before")
    @classmethod
    def _within_described(cls, value):
        if isinstance(value, bool):  # registries before issue 25 said only `within: true`
            if not value:
                return None
            raise ValueError("describe the one-run form: within: {metric, unit, needs?} "
                             "(how one fine-tune trained elsewhere decides the claim, and its units)")
        return value

    @model_validator(mode="after")
    def _cases_unique(self):
        names = [self.primary.case] + [s.case for s in self.secondary]
        if len(set(names)) != len(names):
            raise ValueError(f"case names must be unique, got {names}")
        if not self.scales:
            raise ValueError("a claim runs at one scale at least")
        return self

    @property
    def cases(self) -> tuple[Case, ...]:
        """The primary first, then every secondary case with the primary's fields filled in."""
        out = [self.primary]
        for s in self.secondary:
            fields = self.primary.model_dump()
            fields.update({k: v for k, v in s.model_dump().items() if v is not None})
            fields["primary"] = False
            out.append(Case(**fields))
        return tuple(out)

    def case(self, name: str) -> Case:
        for c in self.cases:
            if c.case == name:
                return c
        raise UplabError(f"claim {self.id} has no case {name!r}; registered: "
                         f"{', '.join(c.case for c in self.cases)}")

    @property
    def protocol_hash(self) -> str:
        """sha256 of the primary's protocol (what a result is decided by, and the regime it needs),
        16 hex digits."""
        protocol = {"id": self.id, "primary": self.primary.model_dump(mode="json")}
        if self.regime:
            protocol["regime"] = list(self.regime)
        body = json.dumps(protocol, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]


class Registry(_Frozen):
    schema_: Literal["uplab.registry/1"] = Field(alias="schema")
    registered: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    alpha: float = Field(gt=0, lt=1)
    # fine-tune target domain -> why a case would use it; a user's registry may leave it out
    targets: dict[str, str] = {"target": "the scale's fine-tune data"}
    claims: dict[str, Entry]
    regime_checks: dict[str, RegimeCheck] = {}
    deviations: tuple[Deviation, ...] = ()  # registry-wide changes (e.g. the decision rule)

    @model_validator(mode="after")
    def _known_checks(self):
        from harness.claims.regime import CHECKS

        unknown = sorted(set(self.regime_checks) - set(CHECKS))
        if unknown:
            raise ValueError(f"regime_checks: no measurement for {unknown}; known: {', '.join(CHECKS)}")
        for entry in self.claims.values():
            missing = [c for c in entry.regime if c not in self.regime_checks]
            if missing:
                raise ValueError(f"{entry.id}: regime names unknown checks {missing}; "
                                 f"registered: {', '.join(self.regime_checks)}")
        return self

    @model_validator(mode="after")
    def _known_targets(self):
        for entry in self.claims.values():
            for case in entry.cases:
                if case.target not in self.targets:
                    raise ValueError(f"{entry.id}[{case.case}]: unknown target {case.target!r}; "
                                     f"registered: {', '.join(self.targets)}")
        return self

    def entry(self, claim_id: str) -> Entry:
        if claim_id not in self.claims:
            raise UplabError(f"no claim {claim_id!r} in the registry ({REGISTRY.name}); "
                             f"registered: {', '.join(sorted(self.claims))}")
        return self.claims[claim_id]

    def primaries(self, scale: str) -> list[Entry]:
        """The claims whose primary result belongs to the Holm family at `scale`."""
        return [e for e in self.claims.values() if scale in e.scales]


def parse(text: str, source: str = "registry") -> Registry:
    """A registry from YAML text; one UplabError line naming the entry and field on bad input."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UplabError(f"{source}: not valid YAML{yaml_problem(e)}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("claims"), dict):
        raise UplabError(f"{source}: expected a mapping with a 'claims' mapping")
    for cid, body in raw["claims"].items():
        if body is not None and not isinstance(body, dict):
            raise UplabError(f"{source}: claims.{cid}: expected a mapping of fields, got {type(body).__name__}")
    claims = {cid: {"id": cid, **(body or {})} for cid, body in raw["claims"].items()}
    try:
        return Registry.model_validate({**raw, "claims": claims})
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UplabError(f"{source}: {where}: {err['msg']}") from None


@lru_cache(maxsize=4)
def load(path: Path | None = None) -> Registry:
    """The shipped registry, or the one at `path` (a user's own protocol, e.g. for new claims
    whose measures a conftest registers with `harness.claims.measures.measure`)."""
    path = Path(path) if path is not None else REGISTRY
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UplabError(f"cannot read the claim registry {path}: {e.strerror or e}") from None
    return parse(text, str(path))
