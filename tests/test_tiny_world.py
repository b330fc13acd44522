"""The tiny world of issue 12 (docs/tiny-world.md): its tasks are pinned and read as documented,
the default target adds to the original instead of contradicting it, and the deep preset has the
depth and size the claims are sized for. Fast: no training here (tests/test_data_learnable.py
trains the defaults)."""

import hashlib

import pytest

from harness import tiny
from harness.claims.settings import seed_layout_range
from harness.data import tasks
from harness.data.tasks import consistent_with_original, generate, text


def _digest(domain: str) -> str:
    examples = generate(domain, "train", 300, 0) + generate(domain, "heldout", 100, 0)
    return hashlib.sha256("\n".join(text(e) for e in examples).encode()).hexdigest()


# Provenance: {d: _digest(d) for d in tasks.DOMAINS} at tasks.VERSION 5 (the texts; test_data.py
# pins the tokens; VERSION 6 changed the tiny preset's depth, not a text: the digests held). A change here changes every run's bytes: bump tasks.VERSION and re-pin.
PINNED = {
    "original": "3bef87ab822b3bc9eeb9dc0740d1efb198c8c6aff5f8c01e66b1fdb50b27ed2c",
    "target": "81efc64ea0ff6cf843ed3d203620a9402bfc48da2c51e79f2c2db3432c2fe2f4",
    "conflict": "d95f67e3abd85fe6ff931e826fda79fb8b67ca58da8942661e401e81b1ec1657",
}


def test_generation_is_deterministic_and_pinned():
    assert tasks.VERSION == 6, "tasks.VERSION changed: recompute PINNED (see its provenance)"
    assert {d: _digest(d) for d in tasks.DOMAINS} == PINNED
    assert generate("original", "train", 40, 5) == generate("original", "train", 40, 5)


def test_original_and_target_compose_two_ops():
    """Both domains are two-op chains over `+ * ^`: the target's three are the ones pre-training
    never shows, each op once first and once second; every chain occurs."""
    original = {tasks.read(e)[0] for e in generate("original", "train", 2000, 0)}
    target = {tasks.read(e)[0] for e in generate("target", "train", 2000, 0)}
    assert original | target == {a + b for a in "+*^" for b in "+*^"} and not original & target
    assert target == {"*+", "+^", "^*"}
    assert {c[0] for c in target} == {c[1] for c in target} == set("+*^")
    # not a one-op task in disguise: the image depends on both ops (chains that share an op
    # differ on the same letter)
    assert tasks.apply("+*", "c") != tasks.apply("+^", "c") and tasks.apply("*+", "c") != tasks.apply("^+", "c")


def _bytes(domain: str) -> set[str]:
    return set("".join(text(e) for e in generate(domain, "train", 2000, 0)))


def test_additive_target_does_not_contradict_the_original():
    """Every target image is what the original's maps compose to and every byte of the target
    occurs in pre-training; the conflicting target fails both: that is what makes its retention
    measure forced erasure. No target prompt is an original prompt, so no original answer moves."""
    for domain, additive in (("target", True), ("conflict", False)):
        examples = generate(domain, "train", 500, 0)
        assert all(consistent_with_original(e) for e in examples) is additive, domain
        assert (_bytes(domain) <= _bytes("original")) is additive, domain
    original_prompts = {tasks.read(e)[0] for e in generate("original", "train", 2000, 0)}
    assert not {tasks.read(e)[0] for e in generate("target", "train", 2000, 0)} & original_prompts
    # and the conflicting maps do undo the original's: previous after next is the identity
    assert all(tasks.apply("+-", c) == c for c in tasks.ALPHABET)


def test_consistency_check_reads_images_not_just_ops():
    """A target example with an original chain but a wrong image is caught."""
    ex = generate("target", "train", 1, 0)[0]
    chain, pairs = tasks.read(ex)
    letter, image = pairs[0]
    wrong = tasks.ALPHABET[(tasks.ALPHABET.index(image) + 1) % len(tasks.ALPHABET)]
    rest = " ".join(f"{a}>{b}" for a, b in pairs[1:])
    assert consistent_with_original(f"{chain} {letter}>{image} {rest}")
    assert not consistent_with_original(f"{chain} {letter}>{wrong} {rest}")


@pytest.mark.parametrize("name", ["tiny", "tiny-llama", "tiny-qwen2"])
def test_deep_preset_depth_and_size(name):
    spec = tiny.PRESETS[name]
    assert spec.num_layers == 10 and spec.hidden == 16  # tasks.VERSION 6 (docs/tiny-world.md)
    start, end = seed_layout_range(spec.num_layers)
    assert (start, end) == (3, 7)  # the seed's range as a 4-layer slice
    n = sum(p.numel() for p in tiny.build(spec, 0).parameters())
    # 1.25x the 8-layer preset's depth at a quarter of its width: ~1/11 of its parameters
    assert n == {"tiny": 27_520, "tiny-llama": 27_520, "tiny-qwen2": 27_840}[name]


def test_eight_layer_preset_is_kept():
    spec = tiny.PRESETS["tiny8"]
    assert spec.num_layers == 8 and spec.hidden == 64 and spec.arch == "mistral"
    assert sum(p.numel() for p in tiny.build(spec, 0).parameters()) == 312_576
    assert seed_layout_range(8) == (3, 6)
