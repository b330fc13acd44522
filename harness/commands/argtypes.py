"""argparse types shared by the CLI and the pytest plugin's options (public: fixtures import them)."""

from __future__ import annotations

import argparse


def int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum, with a message naming the bound."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
