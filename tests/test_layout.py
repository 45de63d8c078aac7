"""Which way the modules import (the design's "apps and which way they import")."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported(path, module_level_only=False):
    """The modules ``path`` imports (relative ones named from its package)."""
    tree = ast.parse((ROOT / path).read_text())
    package = ".".join(Path(path).parent.parts)
    nodes = tree.body if module_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_planner_imports_nothing_of_the_web_layer():
    web = [
        name
        for name in imported("generations/planner.py")
        if name.startswith("studio_dashboard") or "views" in name.split(".")
    ]
    assert web == []


def test_the_credits_models_import_nothing_of_generations_when_loaded():
    """``generations`` calls ``credits`` to hold and charge; the ledger names the
    generations' models by string, so loading it cannot import them in a circle."""
    assert not any(name.startswith("generations") for name in imported("credits/models.py", True))


def test_the_ledger_lives_in_credits():
    from credits.models import LedgerEntry, WalletSnapshot

    assert (LedgerEntry._meta.app_label, WalletSnapshot._meta.app_label) == ("credits", "credits")
    assert not {"LedgerEntry", "WalletSnapshot"} & {
        node.name
        for node in ast.parse((ROOT / "generations/models.py").read_text()).body
        if isinstance(node, ast.ClassDef)
    }


def test_nothing_imports_the_ledger_from_generations():
    skip = {".venv", "node_modules", "migrations"}
    sources = [
        path
        for path in ROOT.rglob("*.py")
        if not skip & set(path.relative_to(ROOT).parts) and path.name != "models.py"
    ]
    wrong = [
        str(path.relative_to(ROOT))
        for path in sources
        if {"generations.models.LedgerEntry", "generations.models.WalletSnapshot"}
        & imported(path.relative_to(ROOT))
    ]
    assert wrong == []
