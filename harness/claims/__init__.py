"""The claim domain: the registry (the protocol), the shared runs (the lab), the effect maths,
the family decision and the recorded baselines. No pytest here: `fixtures/` is the glue that
turns these values into test outcomes (a `NotApplicable` becomes a skip with its reason)."""

from __future__ import annotations


class NotApplicable(Exception):
    """A claim cannot be decided in this setting (no GPU run, no data, one run only); the message
    says why. The pytest plugin turns it into a skip with that reason."""
