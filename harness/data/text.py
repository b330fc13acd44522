"""Real text for the `real` scale, drawn offline from what every Python installation has.

Two domains, both from the running interpreter's standard library (nothing is downloaded or
shipped; the text is the Python Software Foundation's, installed with Python):

- `prose` (the *original* domain, which a pretrained base already knows): the English paragraphs
  of the Python language reference as `pydoc_data.topics` carries it, one document per topic,
  with indented code examples and grammar rules dropped, so what is left is running English;
- `python` (the *target* domain to fine-tune on): the source of the top-level `*.py` modules of
  the standard library, one document per file;
- `python-all` (the target of the `real` scale's GPU profile, whose fine-tunes read millions of
  tokens): every `*.py` file of the standard library, packages included, test suites left out
  (~12 MB of source in CPython 3.11, ~3.5 M tokens); a top-level module has the same name, so
  the same held-out fate, as in `python`.

The text differs between Python versions, so a domain is pinned by the sha256 of its whole corpus
(`corpus_sha256`); a `Text` source carries that hash and loading it on an interpreter whose text
differs is refused with one line, never silently trained on other bytes. Documents are held out
by hash (sha1 of the document's name, like `harness.data.local`), and taken in hash order, so a
training set of n blocks is a mix of modules rather than the first files alphabetically.
"""

from __future__ import annotations

import hashlib
import platform
import re
import sysconfig
from functools import lru_cache
from pathlib import Path

from harness.errors import UplabError

DOMAINS = ("prose", "python", "python-all")
TEST_DIRS = ("test", "tests", "idle_test", "site-packages", "__pycache__")
ROLE = {"original": "prose", "target": "python"}  # which real domain plays which part


def _is_prose(paragraph: str) -> bool:
    """Running English: not indented (code, grammar), mostly letters, at least a sentence long."""
    if not paragraph or paragraph[0].isspace() or paragraph.lstrip().startswith(("*", "=", "-", "+")):
        return False
    words = paragraph.split()
    letters = sum(c.isalpha() or c.isspace() for c in paragraph)
    return len(words) >= 12 and letters / len(paragraph) >= 0.85


def _prose() -> list[tuple[str, str]]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise UplabError("the `prose` text domain reads pydoc_data.topics, which this Python lacks "
                         "(a stripped-down install); use a full CPython") from None
    docs = []
    for name in sorted(topics):
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", topics[name]) if _is_prose(p)]
        if paragraphs:
            docs.append((name, "\n\n".join(paragraphs)))
    return docs


def _python(recursive: bool = False) -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.rglob("*.py") if recursive else root.glob("*.py"))
    files = [f for f in files if not any(p in TEST_DIRS or p.startswith("test_")
                                         for p in f.relative_to(root).parts)] if recursive else files
    if not files:
        raise UplabError(f"the `python` text domain reads the standard library's *.py files, and "
                         f"{root} has none (a zipped or stripped stdlib); use a full CPython")
    return [(f.relative_to(root).as_posix(), f.read_text(encoding="utf-8", errors="replace")) for f in files]


@lru_cache(maxsize=None)
def documents(domain: str) -> tuple[tuple[str, str], ...]:
    """(name, text) of every document of a domain, in hash order of the names."""
    if domain not in DOMAINS:
        raise UplabError(f"unknown text domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    docs = _prose() if domain == "prose" else _python(recursive=domain == "python-all")
    return tuple(sorted(docs, key=lambda d: _name_hash(d[0])))


def _name_hash(name: str) -> int:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16)


@lru_cache(maxsize=None)
def corpus_sha256(domain: str) -> str:
    """The hash that pins a domain's text: over every document's name and bytes, in order."""
    h = hashlib.sha256(f"uplab.text/1 {domain}\n".encode())
    for name, text in documents(domain):
        body = text.encode("utf-8")
        h.update(f"{name}\0{len(body)}\0".encode("utf-8"))
        h.update(body)
    return h.hexdigest()


def is_heldout(name: str, percent: int) -> bool:
    return _name_hash(name) % 100 < percent


def split_documents(domain: str, split: str, percent: int, sha256: str) -> list[str]:
    """The texts of one split ('train' or 'heldout'), after checking the corpus is the pinned one."""
    have = corpus_sha256(domain)
    if have != sha256:
        raise UplabError(
            f"the {domain!r} text domain of this Python ({platform.python_version()}) has sha256 "
            f"{have[:12]}, the run spec pins {sha256[:12]}; runs on real text are tied to one Python "
            "version: rebuild the spec here (harness.data.text.source) or use that Python")
    texts = [t for n, t in documents(domain) if is_heldout(n, percent) == (split == "heldout")]
    if not texts:
        raise UplabError(f"the {domain!r} text domain has no {split} documents at heldout_percent={percent}")
    return texts


def provenance(domain: str) -> dict:
    """Where a domain's text came from: for a run's or a report's provenance."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    where = {"prose": "pydoc_data.topics", "python": str(stdlib / "*.py"),
             "python-all": str(stdlib / "**" / "*.py") + " (test suites left out)"}[domain]
    return {"domain": domain, "python": platform.python_version(), "source": where,
            "documents": len(documents(domain)), "sha256": corpus_sha256(domain),
            "chars": sum(len(t) for _, t in documents(domain))}
