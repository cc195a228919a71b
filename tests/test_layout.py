"""The package layout: no import cycles, arrows one way, no flat module families.

The graph is built from the source (``ast``), not by importing: an edge is a
module-level import of one of our modules. Imports under ``if TYPE_CHECKING:`` are
left out (they never run); imports inside functions are left out of the first cycle
check (they do not run when the module is imported) and kept in the second one and in
the layering check, so a cycle cannot hide in a function.
Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those implicit
edges are left out too, as every Python cycle check does, since a package's
``__init__`` re-exporting its submodules is the point of a package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("privacy", "masking", "federated", "covault")

#: What each package may import besides itself (DESIGN.md: covault -> masking,
#: federated -> privacy).
ALLOWED = {
    "privacy": set(),
    "masking": {"privacy"},
    "federated": {"privacy"},
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``) for every module of ours."""
    found: dict[str, tuple[Path, bool]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours that ``name`` (a module or a name in one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], *, in_functions: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported: at module level, also
    inside if/try/with blocks and class bodies, never under ``if TYPE_CHECKING:``; with
    ``in_functions``, also those inside functions (they run on first call)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if in_functions:
                found += _imports(node.body, in_functions=True)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            found += _imports(node.orelse, in_functions=in_functions)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    found += _imports([child], in_functions=in_functions)
                elif isinstance(child, ast.excepthandler | ast.match_case):
                    found += _imports(child.body, in_functions=in_functions)
    return found


def _edges(module: str, path: Path, is_package: bool, *, in_functions: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    for node in _imports(tree.body, in_functions=in_functions):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub``
            names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                     for a in node.names]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                targets.add(target)
    return targets


#: Module-level imports only: what runs on ``import module``.
GRAPH = {m: _edges(m, path, is_package, in_functions=False)
         for m, (path, is_package) in MODULES.items()}
#: The same, with the imports inside functions added.
FULL_GRAPH = {m: _edges(m, path, is_package, in_functions=True)
              for m, (path, is_package) in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walk_sees_the_packages() -> None:
    for name in ("privacy.errors", "privacy.ledger.log", "privacy.psi.party",
                 "privacy.fpe.ff1", "masking.policy", "covault.cli"):
        assert name in MODULES
    assert "privacy.ledger.log" in GRAPH["privacy.ledger"]
    assert "privacy.ledger.merkle" in GRAPH["privacy.ledger.checkpoint"]


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "module-level import cycles: " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_no_import_cycles_hidden_in_functions() -> None:
    # An import moved into a function breaks a cycle at import time only; the modules
    # still depend on each other. Move the shared piece into the lower module instead.
    cycles = _cycles(FULL_GRAPH)
    assert not cycles, "import cycles through imports inside functions: " + "; ".join(
        " <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layering(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in FULL_GRAPH.items() if module.split(".")[0] == package
        for target in targets if target.split(".")[0] not in allowed
    )
    assert not wrong, f"{package} may import only {sorted(allowed)}: " + "; ".join(wrong)


def test_no_flat_module_families_in_privacy() -> None:
    flat = sorted(
        p.name for pattern in ("fpe_*.py", "ledger_*.py", "psi_*.py", "fpe.py", "ledger.py",
                               "psi.py", "merkle.py", "checkpoint.py")
        for p in (ROOT / "privacy").glob(pattern)
    )
    assert not flat, f"move these into privacy/fpe, privacy/ledger or privacy/psi: {flat}"
    for package in ("fpe", "ledger", "psi"):
        assert (ROOT / "privacy" / package / "__init__.py").is_file()
