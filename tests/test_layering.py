"""harness/'s layering, read from the source: no import cycle between modules, no import of a
higher layer, and nothing from the pytest glue, the claim tests or the report.

Every import counts, also one inside a function (a lazy import is still a dependency: the
cache ↔ runner cycle was one) and one under TYPE_CHECKING. A new top-level module or package
of harness/ must be placed in LAYERS before this test passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"

# Lower first. A unit may import units of lower layers only; units in one layer are independent.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("schema", "limits", "versions", "stats"),
    ("arch", "tiny", "layermap", "plan_schema"),
    ("dims", "checkpoint"),
    ("flops", "plan"),
    ("lint", "strategies", "render"),
    ("build",),
    ("data",),
    ("train",),
    ("runs", "real"),
    ("measure", "plots"),
    ("heatmap",),
    ("launch",),
    ("claims",),
    ("commands",),
    ("cli",),
]
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
FORBIDDEN = ("fixtures", "hypotheses", "reports", "tests", "pytest", "_pytest")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module `path` imports (anywhere in it). `from pkg import sub` names pkg.sub when
    that is a module, else pkg: a module importing its package's sibling that way is no cycle."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return out


def graph(root: Path) -> dict[str, set[str]]:
    mods = modules(root)
    known = set(mods)
    top = root.name
    return {name: {m for m in imports(path, name, known) if m.split(".")[0] in (top, *FORBIDDEN)}
            for name, path in mods.items()}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def violations(g: dict[str, set[str]]) -> list[str]:
    """Every import that leaves the layering, as 'importer -> imported (why)'."""
    out = []
    for src, targets in sorted(g.items()):
        for dst in sorted(targets):
            if dst.split(".")[0] in FORBIDDEN:
                out.append(f"{src} -> {dst} (harness must not import {dst.split('.')[0]})")
                continue
            a, b = unit(src), unit(dst)
            if a == b or a == "harness" or b == "harness":
                continue
            if LEVEL[b] >= LEVEL[a]:
                kind = "upward" if LEVEL[b] > LEVEL[a] else "sideways, within one layer"
                out.append(f"{src} -> {dst} ({kind}: {a} is layer {LEVEL[a]}, {b} layer {LEVEL[b]})")
    return out


def test_every_unit_of_harness_has_a_layer():
    units = {unit(m) for m in modules(HARNESS)} - {"harness"}
    assert units - set(LEVEL) == set(), "place the new module or package in LAYERS"
    assert set(LEVEL) - units == set(), "a unit in LAYERS no longer exists: remove it"


def test_no_import_cycle_in_harness():
    assert cycles(graph(HARNESS)) == []


def test_no_upward_or_forbidden_import_in_harness():
    assert violations(graph(HARNESS)) == []


# -- the checks themselves can fail -----------------------------------------------------------

def fake_harness(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "harness"
    for rel, text in {"__init__.py": "", **files}.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return root


def test_a_lazy_cycle_is_found(tmp_path):
    root = fake_harness(tmp_path, {
        "runs/__init__.py": "",
        "runs/cache.py": "from harness.runs.runner import execute\n",
        "runs/runner.py": "def load():\n    from harness.runs.cache import get_or_run\n",
    })
    assert cycles(graph(root)) == [["harness.runs.cache", "harness.runs.runner"]]


@pytest.mark.parametrize("files, expected", [
    ({"train/__init__.py": "", "train/loop.py": "from harness.launch import dist\n",
      "launch/__init__.py": "", "launch/dist.py": ""},
     "harness.train.loop -> harness.launch.dist (upward"),
    ({"plan.py": "from harness import strategies\n", "strategies.py": ""},
     "harness.plan -> harness.strategies (upward"),
    ({"lint.py": "import harness.render\n", "render.py": ""},
     "harness.lint -> harness.render (sideways"),
    ({"runs/__init__.py": "", "runs/x.py": "def f():\n    import fixtures.options\n"},
     "harness.runs.x -> fixtures.options (harness must not import fixtures)"),
    ({"measure/__init__.py": "", "measure/m.py": "from . import n\nfrom ..launch import command\n",
      "measure/n.py": "", "launch/__init__.py": "", "launch/command.py": ""},
     "harness.measure.m -> harness.launch.command (upward"),
])
def test_a_bad_import_is_found(tmp_path, files, expected):
    found = violations(graph(fake_harness(tmp_path, files)))
    assert len(found) == 1 and found[0].startswith(expected), found
