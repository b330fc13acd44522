"""Data: deterministic synthetic domains (pinned bytes), batching, local sources, bad input."""

import hashlib
import json

import numpy as np
import pytest
import torch

from harness.data import (IGNORE, ByteTokenizer, DataSpec, Local, Synthetic, TokenSet, collate, epoch_batches,
                          generate, load, load_split, load_tokenizer, tasks)
from harness.errors import UplabError
from harness.tiny import BOS_ID, EOS_ID, PAD_ID

TOK = ByteTokenizer()


def digest(ts) -> str:
    h = hashlib.sha256()
    for seq, mask in zip(ts.seqs, ts.masks):
        h.update(json.dumps([seq, [int(m) for m in mask]]).encode())
    return h.hexdigest()


# Provenance: python -c "from tests.test_data import *; print(pinned())" on the commit that
# introduced tasks.VERSION 5 (VERSION 6 changed the tiny preset's depth, not a byte: the digests
# held). A change here means every cached run is stale: bump VERSION.
# The conflicting domain's bytes are VERSION 3's target, unchanged (same digests as then).
PINNED = {
    ("original", "train"): "0a9e1266b85859b555a1fba5ff6253cbae53761dff5f563601392b6fe4695df1",
    ("original", "heldout"): "cf39902eb846d367f67cdc545595553d9c57bfdc8f4999fbcc114edf25d2bcff",
    ("target", "train"): "e37408ef2cf33c006f223f305e88e72dfd77197b1afd12cce0be686aaa375c5e",
    ("target", "heldout"): "9e72ceaebb1a3cede93521c63f003d3d8fb065714967276e7a104975cad6ccd1",
    ("conflict", "train"): "bd5055ea0ab638acb2a5c4b5fe7ce47aedbf0c14d4799e8a2c77b5b36e78255f",
    ("conflict", "heldout"): "cb387d81f26953494e580fb72fa18502b9140e9e8d81fe642373783f53485410",
}


def pinned() -> dict:
    out = {}
    for domain in ("original", "target", "conflict"):
        src = Synthetic(domain=domain, size=500, seed=0)
        out[(domain, "train")] = digest(load_split("t", src, "train", TOK, 64))
        out[(domain, "heldout")] = digest(load_split("h", src, "heldout", TOK, 64, n=200))
    return out


def test_bytes_are_pinned():
    assert tasks.VERSION == 6, "tasks.VERSION changed: recompute PINNED (see its provenance)"
    assert pinned() == PINNED


def test_examples_read_as_documented():
    for domain, length, link in (("original", 2, ">"), ("target", 2, ">"), ("conflict", 1, ":")):
        for ex in generate(domain, "train", 50, 0):
            t = tasks.text(ex)
            head = t.split(" ")[0]
            assert t.count(link) == tasks.PAIRS and len(head.strip("[]")) == length, t
            chain = head.strip("[]")
            letters = [seg[0].strip()[0] for seg in ex[1::2]]
            images = [seg[0] for seg in ex[2::2]]
            assert images == [tasks.apply(chain, c) for c in letters]
    # the maps by hand, so a wrong table in tasks.MAPS cannot check itself
    assert [tasks.apply(op, "a") for op in "=+*^-~"] == ["a", "b", "a", "b", "l", "l"]
    assert [tasks.apply(op, "c") for op in "=+*^-~"] == ["c", "d", "k", "d", "b", "j"]
    assert tasks.apply("+*", "a") == "f" and tasks.apply("*+", "a") == "b"  # left to right
    assert all(tasks.text(e).startswith(("[-] ", "[~] ")) for e in generate("conflict", "train", 50, 0))


def test_streams_extend_and_seeds_differ():
    assert generate("target", "train", 100, 3) == generate("target", "train", 300, 3)[:100]
    assert generate("target", "train", 100, 3) != generate("target", "train", 100, 4)
    assert generate("target", "heldout", 50, 0) == generate("target", "heldout", 80, 0)[:50]


def test_heldout_is_unseen_and_distinct():
    for domain in tasks.DOMAINS:
        held = [tasks.text(e) for e in generate(domain, "heldout", tasks.HELDOUT_RESERVE, 0)]
        train = {tasks.text(e) for e in generate(domain, "train", 5000, 0)}
        assert len(set(held)) == len(held)
        assert not train & set(held)


def test_tokens_and_scored_positions():
    ts = load_split("t", Synthetic(domain="original", size=4), "train", TOK, 64)
    seq, mask = ts.seqs[0], ts.masks[0]
    assert seq[0] == BOS_ID and seq[-1] == EOS_ID and all(0 <= i < 256 for i in seq[1:-1])
    assert TOK.decode(seq) == tasks.text(generate("original", "train", 1, 0)[0])
    # scored: the four images and EOS, nothing else
    assert sum(mask) == tasks.PAIRS + 1 and mask[-1]
    images = [seg[0] for seg in generate("original", "train", 1, 0)[0][2::2]]
    assert [chr(i) for i, m in zip(seq, mask) if m][:-1] == images


def test_collate_masks_prompt_and_padding():
    ts = load_split("t", Synthetic(domain="target", size=8), "train", TOK, 64)
    short = load_split("s", Synthetic(domain="target", size=8), "train", TOK, 12)  # truncated
    b = collate(short, [0, 1], PAD_ID)
    assert b["input_ids"].shape == b["labels"].shape
    b = collate(ts, [0, 1, 2], PAD_ID)
    ids, labels = b["input_ids"], b["labels"]
    scored = labels != IGNORE
    assert torch.equal(labels[scored], ids[scored])
    assert int(scored.sum()) == 3 * (tasks.PAIRS + 1)
    everything = collate(ts, [0], PAD_ID, "all")["labels"]
    assert (everything[0, 1:] != IGNORE).all() and everything[0, 0] == IGNORE


def test_epoch_batches_are_full_shuffles_fixed_by_seed():
    a = epoch_batches(100, 32, seed=5, epoch=0)
    assert [len(x) for x in a] == [32, 32, 32]
    assert len(set(np.concatenate(a).tolist())) == 96
    assert all(np.array_equal(x, y) for x, y in zip(a, epoch_batches(100, 32, seed=5, epoch=0)))
    assert not np.array_equal(a[0], epoch_batches(100, 32, seed=5, epoch=1)[0])
    assert not np.array_equal(a[0], epoch_batches(100, 32, seed=6, epoch=0)[0])


def test_dataspec_defaults_measure_both_domains():
    spec = DataSpec.synthetic("target", size=64)
    train, evals = load(spec, TOK)
    assert len(train) == 64 and set(evals) == {"original", "target"}
    assert all(len(e) == spec.eval_size for e in evals.values())
    assert hash(spec) == hash(DataSpec.synthetic("target", size=64))
    with pytest.raises(UplabError, match="fewer than one batch"):
        load(DataSpec.synthetic("target", size=8), TOK)
    # a fine-tune on the conflicting domain is scored on it under the name "target"
    conflict = DataSpec.synthetic("conflict", size=64)
    assert conflict.evals["target"].domain == "conflict" and conflict.evals["original"].domain == "original"
    assert DataSpec.synthetic("original").evals["target"].domain == "target"


# --- local sources ---------------------------------------------------------------------------


def test_local_text_is_packed_and_split_stably(tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_text("\n".join(f"line number {i} of the corpus" for i in range(400)) + "\n")
    src = Local(path=str(f), heldout_percent=10)
    train = load_split("t", src, "train", TOK, 32)
    held = load_split("h", src, "heldout", TOK, 32)
    assert not train.has_answers and all(len(s) == 32 for s in train.seqs)
    assert len(held) > 0 and len(train) > 4 * len(held)
    assert load_split("t", src, "train", TOK, 32) == train  # stable
    assert all(m[0] is False and all(m[1:]) for m in train.masks)


def test_local_jsonl_prompt_completion(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"q{i}?", "completion": f"a{i}"}) + "\n" for i in range(200)))
    spec = DataSpec(train=Local(path=str(f)), evals={"mine": Local(path=str(f))}, batch_size=8)
    train, evals = load(spec, TOK)
    assert train.has_answers and evals["mine"].has_answers
    seq, mask = train.seqs[0], train.masks[0]
    assert TOK.decode([i for i, m in zip(seq, mask) if m]).startswith("a")


def test_local_hf_dataset_with_validation_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": [f"train doc {i} " * 4 for i in range(50)]}),
        "validation": datasets.Dataset.from_dict({"text": [f"valid doc {i} " * 4 for i in range(10)]}),
    })
    dd.save_to_disk(str(tmp_path / "ds"))
    held = load_split("h", Local(path=str(tmp_path / "ds")), "heldout", TOK, 16)
    assert "valid" in TOK.decode(held.seqs[0])


@pytest.mark.parametrize("setup, match", [
    (lambda p: p / "missing.txt", "does not exist"),
    (lambda p: (p / "bad.jsonl").write_text('{"text": "ok"}\n{broken\n') and p / "bad.jsonl", r"bad.jsonl:2: not valid JSON"),
    (lambda p: (p / "f.jsonl").write_text('{"body": "x"}\n') and p / "f.jsonl", "neither 'text'"),
    (lambda p: (p / "empty.txt").write_text("\n\n") and p / "empty.txt", "no train records"),
    (lambda p: (p / "d").mkdir() or p / "d", "not a saved HF dataset"),
    (lambda p: (p / "b.txt").write_bytes(b"\xff\xfe\x00bad") and p / "b.txt", "not UTF-8"),
])
def test_local_bad_input_is_one_clear_line(tmp_path, setup, match):
    path = setup(tmp_path)
    with pytest.raises(UplabError, match=match) as e:
        load_split("t", Local(path=str(path)), "train", TOK, 32)
    assert "\n" not in str(e.value)


def test_tokenizer_from_local_folder_only(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, "hello": 3, "world": 4}
    tk = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                            unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    tok = load_tokenizer(tmp_path / "tok")
    assert tok.encode("hello world") == [3, 4] and tok.eos_id == 2 and tok.pad_id == 2
    ts = load_split("t", Synthetic(domain="target", size=2), "train", tok, 64)
    assert ts.seqs[0][0] == 1 and ts.seqs[0][-1] == 2
    with pytest.raises(UplabError, match="not a directory"):
        load_tokenizer(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UplabError, match="no usable tokenizer"):
        load_tokenizer(tmp_path / "empty")


def test_token_set_digest_and_batches():
    """A set's digest follows its contents only, and its cached batches are collate's."""
    a = TokenSet("t", ((1, 2, 3), (4, 5)), ((False, True, True), (False, True)), True)
    same = TokenSet("t", ((1, 2, 3), (4, 5)), ((False, True, True), (False, True)), True)
    other_mask = TokenSet("t", ((1, 2, 3), (4, 5)), ((False, False, True), (False, True)), True)
    other_name = TokenSet("u", a.seqs, a.masks, True)
    assert a.digest == same.digest
    assert len({a.digest, other_mask.digest, other_name.digest}) == 3
    batches = a.batches(1, 0)
    assert a.batches(1, 0) is batches  # built once
    for b, i in zip(batches, (0, 1)):
        want = collate(a, [i], 0, "answer")
        assert all(torch.equal(b[k], want[k]) for k in want)
    assert [b["input_ids"].shape[0] for b in a.batches(2, 0)] == [2]


@pytest.mark.parametrize("replay", [0.25, 0.5, 0.3])
def test_replay_mixes_the_original_training_stream_in_evenly(replay):
    """Synthetic.replay: that share of the set comes from the original domain's training stream
    (its first examples, the ones pre-training saw first), spread evenly; the held-out sets never."""
    from harness.data import tasks

    n = 200
    mixed = tasks.mixed("target", n, 0, replay)
    old = [ex for ex in mixed if tasks.read(ex)[0] not in tasks.TARGET_CHAINS]
    assert len(mixed) == n and len(old) == int(n * replay)
    assert old == tasks.generate("original", "train", len(old), 0)
    assert [ex for ex in mixed if ex not in old] == tasks.generate("target", "train", n - len(old), 0)
    first_half = mixed[: n // 2]
    assert abs(sum(ex in old for ex in first_half) - n // 2 * replay) <= 1
    held = {tasks.text(ex) for ex in tasks.generate("target", "heldout", 256, 0)}
    assert not held & {tasks.text(ex) for ex in mixed}


def test_replay_zero_keeps_the_spec_json_and_is_bounded():
    from pydantic import ValidationError

    from harness.data.spec import Synthetic

    assert "replay" not in Synthetic(domain="target").model_dump(mode="json")
    assert Synthetic(domain="target", replay=0.5).model_dump(mode="json")["replay"] == 0.5
    for bad in (-0.1, 1.0):
        with pytest.raises(ValidationError):
            Synthetic(domain="target", replay=bad)


def test_token_count_counts_a_pad_id_inside_the_text():
    """A tokenizer whose pad is its EOS writes that id inside packed text: it is a real token
    (the training loops' `tokens` metric), only the padding after a short row is not."""
    from harness.data import TokenSet, collate, token_count

    ts = TokenSet("t", [[5, 0, 7, 8], [9, 0]], [[True] * 4, [True] * 2], True)
    assert token_count(ts, [0, 1]) == 6
    assert int((collate(ts, [0, 1], pad_id=0)["input_ids"] != 0).sum()) == 4  # what was counted before
