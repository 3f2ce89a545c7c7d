"""Imports point one way: core <- campaigns <- loyalty <- attribution <- analytics <- web
(DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "core": {"campaigns", "loyalty", "attribution", "analytics", "web", "fastapi", "starlette"},
    "campaigns": {"loyalty", "attribution", "analytics", "web", "fastapi", "starlette"},
    "loyalty": {"attribution", "analytics", "web", "fastapi", "starlette"},
    "attribution": {"analytics", "web", "fastapi", "starlette"},
    "analytics": {"web", "fastapi", "starlette"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    folder = ROOT / package
    files = sorted(folder.rglob("*.py")) if folder.exists() else []
    broken = {
        str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files
    }
    assert {f: bad for f, bad in broken.items() if bad} == {}


def test_the_check_sees_imports() -> None:
    assert "fastapi" in imported_roots(ROOT / "web" / "app.py")


def test_every_package_is_installed() -> None:
    """`pip install -e .` maps only the packages pyproject names: one left out imports in
    the tests (the repository is on the path) but not from the installed `retain`."""
    import tomllib

    root = Path(__file__).parents[1]
    include = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    packages = {p.parent.name for p in root.glob("*/__init__.py")} - {"tests", "bench"}
    assert sorted(p for p in packages if f"{p}*" not in include) == []
