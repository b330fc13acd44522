"""Real text domains (harness.data.text): drawn from this interpreter, deterministic, pinned by hash,
held out by hash; packed through the data spec like any source."""

import json

import pytest

from harness.data import ByteTokenizer, DataSpec, load_split, pack_texts, text
from harness.data.spec import Text
from harness.errors import UplabError


@pytest.mark.parametrize("domain", text.DOMAINS)
def test_domain_is_deterministic_and_pinned(domain):
    first = text.corpus_sha256(domain)
    docs = text.documents(domain)
    text.documents.cache_clear()
    text.corpus_sha256.cache_clear()
    assert text.documents(domain) == docs and text.corpus_sha256(domain) == first
    assert len(docs) >= 50 and sum(len(t) for _, t in docs) > 100_000
    info = text.provenance(domain)
    assert info["sha256"] == first and info["python"] and info["documents"] == len(docs)


def test_hash_changes_with_the_text(monkeypatch):
    pinned = text.corpus_sha256("python")
    docs = text.documents("python")
    changed = (docs[0][0], docs[0][1] + "#"), *docs[1:]
    monkeypatch.setattr(text, "documents", lambda domain: changed)
    text.corpus_sha256.cache_clear()
    try:
        assert text.corpus_sha256("python") != pinned
        with pytest.raises(UplabError, match="sha256") as e:
            text.split_documents("python", "train", 10, pinned)
        assert "\n" not in str(e.value)
    finally:
        text.corpus_sha256.cache_clear()


@pytest.mark.parametrize("domain", text.DOMAINS)
def test_heldout_is_disjoint_by_name(domain):
    sha = text.corpus_sha256(domain)
    train = text.split_documents(domain, "train", 10, sha)
    held = text.split_documents(domain, "heldout", 10, sha)
    assert train and held and len(train) + len(held) == len(text.documents(domain))
    assert not set(train) & set(held)  # no document in both (two topics may share a text)
    names = [n for n, _ in text.documents(domain) if text.is_heldout(n, 10)]
    assert 0.02 < len(names) / len(text.documents(domain)) < 0.25  # about 10 %


def test_prose_is_running_english():
    for _, doc in text.documents("prose"):
        for para in doc.split("\n\n"):
            assert not para[0].isspace() and len(para.split()) >= 12
    assert not text._is_prose("   x = 1  # an indented example, which is code rather than prose at all")
    assert not text._is_prose('assert_stmt ::= "assert" expression ["," expression] ' * 2)


def test_packing_n_blocks_is_a_prefix_of_packing_all():
    tok, source = ByteTokenizer(), Text.of("prose", heldout_percent=30)
    everything = load_split("x", source, "heldout", tok, 64)
    first = load_split("x", source, "heldout", tok, 64, 10)
    assert len(first) == 10 and first.seqs == everything.seqs[:10]
    assert all(len(s) == 64 for s in first.seqs) and not first.has_answers
    capped = load_split("x", Text.of("prose", heldout_percent=30, size=7), "heldout", tok, 64)
    assert capped.seqs == everything.seqs[:7]
    texts = text.split_documents("prose", "heldout", 30, source.sha256)
    assert pack_texts("x", texts, tok, 64).seqs == everything.seqs


def test_text_source_in_a_data_spec_round_trips():
    spec = DataSpec(train=Text.of("python", size=8), evals={"original": Text.of("prose")},
                    batch_size=2, max_len=128, train_on="all")
    again = DataSpec.model_validate(json.loads(json.dumps(spec.model_dump(mode="json"))))
    assert again == spec and isinstance(again.train, Text)
    with pytest.raises(ValueError):
        Text(domain="python", sha256="abc")  # a hash that pins nothing
    with pytest.raises(UplabError, match="unknown text domain"):
        text.documents("latin")


def test_packing_encodes_each_document_once_and_only_those_needed():
    """The first n blocks of a large domain cost one pass over the documents they need (packing
    re-tokenized every document taken so far each time a guess fell short: minutes for the gpu
    profile's 3.2 M tokens)."""
    calls: list[str] = []

    class Counting(ByteTokenizer):  # ~4 characters a token, as BPE on code
        def encode(self, t):
            calls.append(t)
            return list(t.encode("utf-8"))[::4]

    source = Text.of("python", heldout_percent=10)
    docs = text.split_documents("python", "train", 10, source.sha256)
    got = load_split("x", source, "train", Counting(), 128, 400)
    first = len(calls)
    assert got.seqs == load_split("x", source, "train", Counting(), 128).seqs[:400]
    calls = calls[:first]
    assert len(calls) == len(set(calls)) and len(calls) < len(docs)
