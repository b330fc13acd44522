"""The two synthetic domains: small string tasks rendered as text, so knowledge is an accuracy.

*original* (what tiny bases are pre-trained on) writes `op letters=answer`;
*target* (what fine-tunes train on) writes `[letters] op -> answer`. The formats differ, so a
model could keep both; the mappings conflict (`nx` shifts letters up, `pv` shifts them down),
so a fine-tune that is careless with shared weights forgets the original domain.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
LENGTHS = (3, 6)  # inclusive range of input lengths


def _shift(word: str, k: int) -> str:
    return "".join(ALPHABET[(ALPHABET.index(c) + k) % len(ALPHABET)] for c in word)


def _swap_pairs(word: str) -> str:
    chars = list(word)
    for i in range(0, len(chars) - 1, 2):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


@dataclass(frozen=True)
class Task:
    name: str  # the op written in the prompt
    solve: Callable[[str], str]


@dataclass(frozen=True)
class Domain:
    name: str
    tasks: tuple[Task, ...]
    render: Callable[[str, str], str]  # (op, letters) -> prompt; the answer follows it

    def sample(self, rng: random.Random) -> tuple[str, str]:
        """One (prompt, answer) pair; every draw goes through `rng` so a seed fixes the bytes."""
        task = self.tasks[rng.randrange(len(self.tasks))]
        length = rng.randint(*LENGTHS)
        word = "".join(ALPHABET[rng.randrange(len(ALPHABET))] for _ in range(length))
        return self.render(task.name, word), task.solve(word)


DOMAINS: dict[str, Domain] = {
    "original": Domain(
        "original",
        (Task("cp", lambda w: w), Task("rv", lambda w: w[::-1]), Task("nx", lambda w: _shift(w, 1))),
        lambda op, w: f"{op} {w}=",
    ),
    "target": Domain(
        "target",
        (Task("pv", lambda w: _shift(w, -1)), Task("rl", lambda w: w[1:] + w[:1]),
         Task("sw", _swap_pairs)),
        lambda op, w: f"[{w}] {op} -> ",
    ),
}


def generate(domain: str, split: str, n: int, seed: int) -> list[tuple[str, str]]:
    """The first `n` examples of a domain's split; held-out prompts never appear in train.

    Each (domain, split, seed) has its own string-seeded stream (Python hashes str seeds with
    sha512, independent of PYTHONHASHSEED), so a larger `n` extends a smaller one.
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    dom = DOMAINS[domain]
    if split == "heldout":
        rng, seen, out = random.Random(f"uplab/{domain}/heldout/{seed}"), set(), []
        # Distinct held-out prompts: a repeated prompt would weigh twice in accuracy.
        while len(out) < n:
            ex = dom.sample(rng)
            if ex[0] not in seen:
                seen.add(ex[0])
                out.append(ex)
        return out
    if split != "train":
        raise ValueError(f"unknown split {split!r}; choose train or heldout")
    held = {p for p, _ in generate(domain, "heldout", HELDOUT_RESERVE, seed)}
    rng, out = random.Random(f"uplab/{domain}/train/{seed}"), []
    while len(out) < n:
        ex = dom.sample(rng)
        if ex[0] not in held:  # keep held-out prompts unseen, whatever the eval size
            out.append(ex)
    return out


# Training streams exclude this many held-out prompts, so any eval size up to it is unseen.
HELDOUT_RESERVE = 1024
