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


OUR_NAMES = {"Layer"}  # our own record type (converter.Layer), a table's column: not Keras's base class


def _class_names_outside_the_registry(names: set[str]) -> list[str]:
    """String constants (docstrings aside) outside converter/layers/ that are a layer class's name, or the start of
    one (``startswith("DepthwiseConv")``)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "layers":
            continue
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and len(node.value) >= 3 and node.value[0].isupper() and node.value not in OUR_NAMES and node.value.isalnum() \
                    and any(name.startswith(node.value) for name in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    return found


def test_no_module_outside_the_registry_names_a_layer_class():
    """Every Keras layer class (Keras's own list and every class any part supports) is named only in
    converter/layers/, so supporting a layer is one module there (issue 24)."""
    keras = pytest.importorskip("keras")
    from converter import layers

    known = {name for name, value in vars(keras.layers).items() if isinstance(value, type)} | set(layers.classes())
    assert "Conv2D" in known and "Convolution2D" in known and len(known) > 150
    assert _class_names_outside_the_registry(known) == []


def test_the_check_finds_a_class_name_branch():
    """The check above fails on the kind of branch it forbids (a meta test: it can fail)."""
    names = _class_names_outside_the_registry({"Bidirectional", "DepthwiseConv2D"})
    assert names == []
    probe = PACKAGE / "_probe_branch.py"
    probe.write_text('"""Doc naming Bidirectional."""\n\ndef f(c):\n    return c == "Bidirectional" or c.startswith("DepthwiseConv")\n')
    try:
        assert [hit.split(" ", 1)[1] for hit in _class_names_outside_the_registry({"Bidirectional", "DepthwiseConv2D"})] \
            == ["'Bidirectional'", "'DepthwiseConv'"]
    finally:
        probe.unlink()


def test_every_part_that_supports_a_class_finds_it_in_the_registry():
    """The readers' roles, quantize's channel axes, the PyTorch mapping and the C forward pass all read the same
    specs: each class any of them supports is one registered spec, with a family module as its home."""
    from converter import layers

    specs = [layers.spec(name) for name in layers.classes()]
    supported = {s.class_name for s in specs if s.roles or s.channels or s.torch or s.c or s.cell}
    assert {"Dense", "Conv2D", "LSTMCell", "BatchNormalization", "GroupNormalization", "Embedding"} <= supported
    homes = {}
    for family in layers.FAMILIES:
        for item in family.SPECS:
            homes.setdefault(item.class_name, []).append(family.__name__)
    assert all(len(modules) == 1 for modules in homes.values()) and set(homes) == set(layers.classes())


def test_what_the_command_line_offers_is_what_the_package_implements():
    """converter.choices declares the names the parser offers (so it needs no numpy); each is implemented, in order."""
    from converter import choices, formats, layouts, quantize, readers

    assert list(formats.FORMATS) == list(choices.FORMAT_OPTIONS)
    assert all(module.OPTIONS is choices.FORMAT_OPTIONS[name] for name, module in formats.FORMATS.items())
    assert tuple(readers.READERS) == choices.READERS and readers.CHOICES == ("auto", *readers.READERS)
    assert tuple(quantize.SCHEMES) == choices.QUANTIZE_SCHEMES
    assert layouts.LAYOUTS is choices.LAYOUTS
