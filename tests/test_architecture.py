"""The layers of the house hold (pyproject.toml's import-linter contract, docs/architecture.md): no module imports
from a layer above its own, there is no import cycle, and no import of the package's own modules hides inside a
function (where it would dodge a cycle instead of removing it)."""
import ast
import shutil
import subprocess

import pytest

from conftest import ROOT

PACKAGE = ROOT / "converter"
# Imports inside functions on purpose: the command line's entry forks the HDF5 probe's worker before it imports the
# rest (its start-up, measured in docs/performance.md), and the package's public names load on first use.
DELIBERATE = {("_launch.py", "main"), ("__init__.py", "__getattr__")}


def test_the_layers_contract_holds():
    command = shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "1 kept, 0 broken" in result.stdout, result.stdout[-3000:]


def own_imports_inside_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                own = (isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("converter"))) \
                    or (isinstance(node, ast.Import) and any(a.name.startswith("converter") for a in node.names))
                if own and (path.name, function.name) not in DELIBERATE:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} in {function.name}")
    return found


def test_no_import_of_the_package_hides_inside_a_function():
    assert own_imports_inside_functions() == []


def test_the_layer_registry_is_the_one_table_of_what_it_knows():
    """Recurrent gate counts, cells and pass-through layers are asked of converter.layers, never tabled again."""
    from converter import layers

    assert all(layers.spec(name).c for name in layers.identity_classes())
    assert {name: layers.gates(name) for name in ("SimpleRNN", "LSTM", "GRU", "LSTMCell")} == \
        {"SimpleRNN": 1, "LSTM": 4, "GRU": 3, "LSTMCell": 4}
    for path in PACKAGE.rglob("*.py"):
        if "layers" in path.relative_to(PACKAGE).parts[:1]:
            continue
        text = path.read_text()
        for table in ('"LSTM": 4', '"SpatialDropout1D", "SpatialDropout2D"', '"kernel", "recurrent_kernel", "depthwise_kernel"'):
            assert table not in text, (path, table)
