"""The seed's two mergekit configs (seed/model-card.md), as test data.

Tests read the verbatim copies in examples/ so that they run on a fresh clone without the
shared folder; `card_blocks` extracts the originals from the card for the test that checks the
copies have not drifted.
"""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "examples"
SEED_39B = DATA / "seed-39b.yml"  # "What is the 39B Upscale?"
SEED_PROPOSED = DATA / "seed-proposed.yml"  # "Proposed Upscale Technique"
MODEL_CARD = Path(__file__).resolve().parents[1].parent / "shared" / "seed" / "model-card.md"

# The card's own diagram of the 39B layout (41 originals, 2 x 22 zeroed copies, 14 originals).
DIAGRAM_39B = "0" * 41 + "X" * 44 + "0" * 14


def card_blocks(text: str) -> list[str]:
    """The bodies of the ```yaml fenced blocks of a markdown text, in order."""
    return re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)


def seed_39b() -> str:
    return SEED_39B.read_text()


def seed_proposed() -> str:
    return SEED_PROPOSED.read_text()
