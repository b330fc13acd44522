"""The one check every measure makes first: the case it was asked for is one it measures."""

from __future__ import annotations

from collections.abc import Iterable


def check_case(claim_id: str, case: str, cases: Iterable[str]) -> str:
    """`case` when it is one of `cases`, else one ValueError line naming the valid ones."""
    cases = tuple(cases)
    if case not in cases:
        raise ValueError(f"{claim_id} has no case {case!r}; its cases are {', '.join(cases)}")
    return case
