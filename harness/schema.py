"""The base of every frozen pydantic value, and the one adapter from a pydantic ValidationError to
an UplabError line naming the field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import UplabError


class Frozen(BaseModel):
    """Immutable, and an unknown key is an error rather than silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def invalid(e: ValidationError, prefix: str, *, where: str = "", hint: str = "") -> UplabError:
    """`{prefix}{location}: {message}{hint}` for the first error; `where` names an empty location."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or where
    return UplabError(f"{prefix}{loc}: {err['msg']}{hint}")
