"""Results leave ``btcmlops.mlops`` as named types: no public function or method there returns
``Any``, a bare ``dict`` or ``dict[str, Any]`` (issue #17, "typed results").

The check reads the annotations' source (an AST scan), so it needs no import of the heavy
modules and sees annotations that ``from __future__ import annotations`` left as text. A
module-level alias (``Document = dict[str, Any]``) is followed, in its own module first, then
in any module of the package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import btcmlops.mlops

PACKAGE_ROOT = Path(btcmlops.mlops.__file__).parent
UNTYPED_DICTS = ("dict", "Dict")


@dataclass(frozen=True)
class Offence:
    where: str
    function: str
    annotation: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.function} -> {self.annotation} ({self.why})"


def type_aliases(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names bound to something that reads as a type (not a call)."""
    aliases: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(
            value, ast.Subscript | ast.BinOp | ast.Name | ast.Attribute
        ):
            aliases[target.id] = value
    return aliases


def reasons(
    annotation: ast.expr,
    local: dict[str, ast.expr],
    shared: dict[str, ast.expr],
    seen: frozenset[str] = frozenset(),
) -> Iterator[str]:
    """Why ``annotation`` is untyped: ``Any`` or a bare ``dict`` anywhere in it."""

    def visit(node: ast.expr, subscripted: bool, seen: frozenset[str]) -> Iterator[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield from visit(ast.parse(node.value, mode="eval").body, False, seen)
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name == "Any":
                yield "Any"
            elif name in UNTYPED_DICTS and not subscripted:
                yield "a bare dict"
            elif isinstance(node, ast.Name) and name not in seen:
                alias = local.get(name, shared.get(name))
                if alias is not None:
                    for why in visit(alias, False, seen | {name}):
                        yield f"{why}, through the alias {name}"
        elif isinstance(node, ast.Subscript):
            yield from visit(node.value, True, seen)
            yield from visit(node.slice, False, seen)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    yield from visit(child, False, seen)

    yield from visit(annotation, False, seen)


def public_functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    """Module-level functions and the methods of module-level classes, underscores left out."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not node.name.startswith("_"):
                yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for member in node.body:
                if isinstance(
                    member, ast.FunctionDef | ast.AsyncFunctionDef
                ) and not member.name.startswith("_"):
                    yield f"{node.name}.{member.name}", member


def offences(sources: dict[str, str]) -> list[Offence]:
    """Every public function or method of ``sources`` (name -> source) returning untyped data."""
    trees = {where: ast.parse(source) for where, source in sources.items()}
    local_aliases = {where: type_aliases(tree) for where, tree in trees.items()}
    shared: dict[str, ast.expr] = {}
    for aliases in local_aliases.values():
        shared.update(aliases)
    found = []
    for where, tree in trees.items():
        for name, function in public_functions(tree):
            if function.returns is None:
                continue
            for why in reasons(function.returns, local_aliases[where], shared):
                found.append(Offence(where, name, ast.unparse(function.returns), why))
    return found


def mlops_sources() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE_ROOT.parent)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
    }


def test_no_public_function_in_mlops_returns_untyped_data():
    found = offences(mlops_sources())

    assert not found, "return a TypedDict or a dataclass instead:\n" + "\n".join(map(str, found))


def test_the_check_finds_every_kind_of_untyped_return():
    source = """
from typing import Any
Document = dict[str, Any]
Nested = list[Document]
def any_dict() -> dict[str, Any]: ...
def bare() -> dict: ...
def anything() -> "Any": ...
def aliased() -> Nested | None: ...
class Report:
    def as_dict(self) -> tuple[dict[str, Any], int]: ...
    def _private(self) -> dict[str, Any]: ...
def _private() -> Any: ...
def typed() -> dict[str, int]: ...
class _Hidden:
    def shown(self) -> Any: ...
"""
    found = {(offence.function, offence.why) for offence in offences({"sample.py": source})}

    assert found == {
        ("any_dict", "Any"),
        ("bare", "a bare dict"),
        ("anything", "Any"),
        ("aliased", "Any, through the alias Document, through the alias Nested"),
        ("Report.as_dict", "Any"),
    }


def test_an_alias_defined_in_another_module_is_followed():
    sources = {
        "types.py": "from typing import Any\nLoose = dict[str, Any]\n",
        "user.py": "from types import Loose\ndef read() -> list[Loose]: ...\n",
    }

    assert [offence.function for offence in offences(sources)] == ["read"]
