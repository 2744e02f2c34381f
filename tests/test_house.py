"""The house: mlee's rooms sit in one declared order, and imports run only downwards, without circles.

The walk reads every file of the package with ``ast``: imports at module level and inside functions (a lazy
import is an arrow too), relative imports, and ``importlib.import_module("mlee....")`` with a literal name.
Imports under ``if TYPE_CHECKING:`` are exempt (they never run). Importing an ancestor package
(``from mlee import __version__``) is no arrow: Python has run that ``__init__`` before the importing module.
docs/design.md draws the same order.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlee"

#: The rooms, lowest first; a room may import only rooms before it (and the ground's modules each other).
#: A room is a top-level module or a subpackage of mlee.
GROUND = ("errors", "fsutil", "console", "signals", "vocabulary")
ORDER = (
    GROUND,         # exceptions, atomic writes, the two consoles, signal guards, shared words (Method, Domain, A-E)
    ("carbon",),    # grid intensities and countries: the estimate monitor records its country with them
    ("monitors",),  # power sources and the sampler
    ("results",),   # the experiment folder, the database; merge re-integrates an interrupted run with the sampler's Track
    ("measure",),   # the session: monitors -> results folder; machine facts for environment.json
    ("rating",),    # ratings and CI gates from merged JSON
    ("label",),     # renders a rated record
    ("report",),    # the HTML report (labels linked by their file names)
    ("export",),    # MLflow, model cards, tables: reads results, rates, renders labels
    ("runners",),   # what runs under measurement, per-layer timing included
    ("predict",),   # energy prediction: profiles kernels with the runners' frameworks
    ("commands",),  # parse -> one library call -> render
    ("cli", "__main__", ""),  # the typer app, ``python -m mlee``, and the package's lazy public face (mlee.measure)
)



@dataclass(frozen=True)
class Arrow:
    """One import of one mlee module by another, where it was written."""

    source: str
    target: str
    path: str
    line: int


def _modules(package: Path) -> dict[str, Path]:
    top = package.parent
    found = {}
    for path in sorted(package.rglob("*.py")):
        name = ".".join(path.relative_to(top).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for child in node.body:
                    lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[:len(parts) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        return [base] + [f"{base}.{a.name}" for a in node.names]
    if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def arrows(package: Path) -> list[Arrow]:
    """Every import of a module of ``package`` by another of its modules, lazy ones included."""
    modules = _modules(package)
    root = package.name

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exempt = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in exempt:
                continue
            targets = {resolve(t) for t in _targets(node, module, path.name == "__init__.py")
                       if t == root or t.startswith(root + ".")}
            # ``from pkg.x import y`` with a module y: the arrow is to pkg.x.y (pkg.x is its ancestor, run anyway).
            targets = {t for t in targets if t and not any(o.startswith(t + ".") for o in targets if o)}
            for target in sorted(targets):
                if target != module and not module.startswith(target + "."):  # an ancestor package is no arrow
                    found.append(Arrow(module, target, str(path.relative_to(package.parent)), node.lineno))
    return found


def room(module: str) -> str:
    """``mlee.results.schema`` -> ``results``; ``mlee.errors`` -> ``errors``; ``mlee`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank_of(order: tuple[tuple[str, ...], ...]) -> dict[str, int]:
    return {name: rank for rank, names in enumerate(order) for name in names}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.append(top)
                    if top == node:
                        break
                if len(part) > 1:
                    out.append(sorted(part))
    return out


def problems(found: list[Arrow], order: tuple[tuple[str, ...], ...],
             allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """Each file circle, room circle, upward arrow and module outside every declared room, as one line."""
    ranks = rank_of(order)
    out = []
    files: dict[str, set[str]] = defaultdict(set)
    rooms: dict[str, set[str]] = defaultdict(set)
    for a in found:
        files[a.source].add(a.target)
        if room(a.source) != room(a.target):
            rooms[room(a.source)].add(room(a.target))
    out += [f"file circle: {' <-> '.join(c)}" for c in circles(files)]
    out += [f"room circle: {' <-> '.join(c)}" for c in circles(rooms)]
    for name in sorted({room(m) for a in found for m in (a.source, a.target)} - set(ranks)):
        out.append(f"room {name or '(package root)'!r} is in no place of the declared order")
    for a in found:
        low, high = ranks.get(room(a.source)), ranks.get(room(a.target))
        if low is None or high is None or high <= low or (a.source, a.target) in allowed:
            continue
        if high == low == 0:
            continue
        out.append(f"upward arrow: {a.path}:{a.line} {a.source} imports {a.target} "
                   f"({room(a.target)} sits above {room(a.source) or 'the package root'})")
    return out


def test_mlee_has_no_circle_and_no_upward_arrow():
    found = arrows(PACKAGE)
    assert len(found) > 300  # the walk sees the package (lazy imports included), not an empty folder
    assert problems(found, ORDER, frozenset()) == []


def test_every_room_of_mlee_has_a_place_in_the_order():
    ranks = rank_of(ORDER)
    rooms = {room(m) for m in _modules(PACKAGE)}
    assert sorted(rooms - set(ranks)) == []
    assert sorted(set(ranks) - rooms) == []  # no stale name in the order either


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_walk_sees_lazy_relative_and_importlib_imports_and_skips_type_checking(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "__version__ = '1'\n",
        "low/__init__.py": "",
        "low/a.py": ("from typing import TYPE_CHECKING\nfrom pkg import __version__\n"
                     "if TYPE_CHECKING:\n    from pkg.high.b import B\n"
                     "def f():\n    from pkg.high import b\n"),
        "low/c.py": "import importlib\nimportlib.import_module('pkg.high.b')\nfrom . import a\n",
        "high/__init__.py": "",
        "high/b.py": "from ..low.a import f\nB = 1\n",
    })
    found = {(a.source, a.target, a.line) for a in arrows(root)}
    assert found == {("pkg.low.a", "pkg.high.b", 6), ("pkg.low.c", "pkg.high.b", 2), ("pkg.low.c", "pkg.low.a", 3),
                     ("pkg.high.b", "pkg.low.a", 1)}


def test_problems_names_circles_upward_arrows_and_unplaced_rooms(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "base.py": "",
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from pkg.high import b\n",
        "low/c.py": "from pkg.low import d\n",
        "low/d.py": "from pkg.low import c\nfrom pkg import base\n",
        "high/__init__.py": "",
        "high/b.py": "from pkg.low import a\nfrom pkg import stray\n",
        "stray.py": "",
    })
    found = arrows(root)
    order = (("base",), ("low",), ("high",))
    assert problems(found, order) == [
        "file circle: pkg.high.b <-> pkg.low.a",
        "file circle: pkg.low.c <-> pkg.low.d",
        "room circle: high <-> low",
        "room 'stray' is in no place of the declared order",
        f"upward arrow: {Path('pkg/low/a.py')}:2 pkg.low.a imports pkg.high.b (high sits above low)",
    ]
    assert problems(found, order + (("stray",),), frozenset({("pkg.low.a", "pkg.high.b")})) == [
        "file circle: pkg.high.b <-> pkg.low.a",
        "file circle: pkg.low.c <-> pkg.low.d",
        "room circle: high <-> low",
        f"upward arrow: {Path('pkg/high/b.py')}:2 pkg.high.b imports pkg.stray (stray sits above high)",
    ]


@pytest.mark.parametrize("bad, expected", [
    ("from pkg.low import z\n", "upward arrow"),
    ("", None),
])
def test_ground_modules_may_import_each_other_but_not_a_room_above(tmp_path, bad, expected):
    root = _package(tmp_path, {"__init__.py": "", "errors.py": "", "fsutil.py": "from pkg import errors\n" + bad,
                               "low/__init__.py": "", "low/a.py": "from pkg import errors\n", "low/z.py": ""})
    found = problems(arrows(root), (("errors", "fsutil"), ("low",)))
    assert [p.split(":")[0] for p in found] == ([expected] if expected else [])
