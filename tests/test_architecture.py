"""The layers import one way and no module imports itself round a circle.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``, since an
import hidden in a function still ties the two modules together. The README's layout section
names every module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nnsweep"
LAYERS = ("train", "stats", "store", "report", "sweep")
EDGE = ("nnsweep.cli", "nnsweep.__main__")  # the command line: may import anything

# What each layer must not import. Top-level modules other than the edge (config, schema,
# errors, ...) are the foundations every layer builds on: they import no layer but train.
FORBIDDEN = {
    "train": {"sweep", "store", "stats", "report"},
    "stats": {"store", "report", "sweep"},
    "store": {"sweep", "report", "stats"},
    "report": {"sweep"},
    "sweep": set(),
    "foundation": {"sweep", "store", "stats", "report"},
}


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (a package as its __init__)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                package = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:  # "from a import b" imports module a.b when there is one
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {module for module in found if module in modules and module != name}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    names = module_names(package)
    return {name: imported(name, path, set(names)) for name, path in names.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "edge" if module in EDGE else "foundation"


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the declared direction, as 'a imports b (layer rule)'."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target in EDGE and module not in EDGE:
                found.append(f"{module} imports {target}: nothing imports the command line")
            elif layer(target) in FORBIDDEN.get(layer(module), set()):
                found.append(f"{module} imports {target}: {layer(module)} must not import it")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Modules that import each other round a circle: every strongly connected group of
    more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(sorted(group) for group in groups)


# --------------------------------------------------------------------------------------
# The checks can fail
# --------------------------------------------------------------------------------------


def test_the_checker_sees_imports_inside_functions_and_reports_circles_and_layers(
    tmp_path: Path,
) -> None:
    package = tmp_path / "nnsweep"
    for folder in ("stats", "store", "report"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "stats" / "core.py").write_text("def f():\n    from nnsweep.store import tables\n")
    (package / "store" / "tables.py").write_text("from ..report import page\n")
    (package / "report" / "page.py").write_text("import nnsweep.stats.core\n")
    graph = import_graph(package)
    assert graph["nnsweep.stats.core"] == {"nnsweep.store.tables"}
    assert graph["nnsweep.store.tables"] == {"nnsweep.report.page"}
    assert violations(graph) == [
        "nnsweep.stats.core imports nnsweep.store.tables: stats must not import it",
        "nnsweep.store.tables imports nnsweep.report.page: store must not import it",
    ]
    assert cycles(graph) == [["nnsweep.report.page", "nnsweep.stats.core", "nnsweep.store.tables"]]


# --------------------------------------------------------------------------------------
# The package
# --------------------------------------------------------------------------------------


def test_imports_go_one_way_between_layers() -> None:
    graph = import_graph()
    assert len(graph) > 30 and graph["nnsweep.report.sweep_report"]  # the parser found them
    assert violations(graph) == []


def test_no_import_circle_between_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_render_module_imports_nothing_else_of_the_report() -> None:
    graph = import_graph()
    assert not {m for m in graph["nnsweep.report.render"] if layer(m) == "report"}


def _layout_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^### Layout\n(.*?)(?=^#|\Z)", text, flags=re.S | re.M)
    assert match, "README.md has no '### Layout' section"
    return match.group(1)


def test_the_readme_layout_names_every_module_and_no_other() -> None:
    """Each bullet '- `nnsweep/pkg/`: ...' names that package's modules in backticks (its
    ``__init__.py`` may go unnamed)."""
    listed: dict[str, set[str]] = {}
    bullets = next(p for p in _layout_section().split("\n\n") if p.startswith("- "))
    for line in ("\n" + bullets).split("\n- ")[1:]:
        folder, _, rest = line.partition(":")
        named = set(re.findall(r"`(\w+\.(?:py|c|h))`", rest))
        listed[folder.strip("` ")] = named - {"__init__.py"}
    present: dict[str, set[str]] = {}
    for path in module_names().values():
        if path.name != "__init__.py":
            folder = path.parent.relative_to(ROOT).as_posix() + "/"
            present.setdefault(folder, set()).add(path.name)
    present["nnsweep/train/"] |= {p.name for p in (PACKAGE / "train").glob("*.[ch]")}
    assert set(listed) == set(present), "README layout: one bullet per package folder"
    for folder, files in present.items():
        assert listed[folder] == files, (
            f"README layout of {folder}: missing {sorted(files - listed[folder])}, "
            f"stale {sorted(listed[folder] - files)}"
        )
