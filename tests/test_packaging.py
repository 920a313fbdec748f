"""What the package needs at run time is what it declares: ``./run demo`` installs only the
runtime dependencies, so a module the code imports that only the test extras bring in breaks the
README's first command on a fresh machine (as ``httpx`` did)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = (re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0] for spec in project["dependencies"])
    return {name.lower().replace("_", "-") for name in names}


def _imported() -> dict[str, str]:
    """Top-level modules imported anywhere in the package -> a file that imports it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "siskamling").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_module_the_package_imports_is_a_runtime_dependency():
    declared = _declared()
    owners = packages_distributions()
    missing = {}
    for module, where in _imported().items():
        if module == "siskamling" or module in sys.stdlib_module_names:
            continue
        distributions = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not distributions & declared:
            missing[module] = where
    assert not missing, f"imported but not in [project].dependencies: {missing}"
