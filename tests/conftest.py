"""Shared fixtures: models are loaded with Keras once per session (importing TensorFlow costs ~5 s)."""
from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from converter.tensors import canonical

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Optional tools: a test that needs one skips, naming the package that provides it, on a plain machine; CI (.ci/run)
# sets KERAS_WEIGHTS_REQUIRE_ALL=1, which makes the same missing tool a failure, so there every test runs.
REQUIRE_ALL = os.environ.get("KERAS_WEIGHTS_REQUIRE_ALL") == "1"
PROVIDERS = {"gcc": "Debian package gcc", "g++": "Debian package g++", "arm-none-eabi-gcc": "Debian package gcc-arm-none-eabi",
             "arm-none-eabi-objcopy": "Debian package binutils-arm-none-eabi", "avr-gcc": "Debian package gcc-avr",
             "avr-objcopy": "Debian package binutils-avr", "chromium": "Debian package chromium",
             "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu; the CPU build is enough",
             "lint-imports": "pip install '.[test]'",
             "tflite_micro.python.tflite_micro.runtime": "pip install tflite-micro (in '.[test]')"}


def missing(what: str) -> None:
    """Skip the test for want of ``what`` (fail instead where KERAS_WEIGHTS_REQUIRE_ALL=1)."""
    message = f"{what} is not installed ({PROVIDERS.get(what, what)})"
    if REQUIRE_ALL:
        pytest.fail(f"{message}; KERAS_WEIGHTS_REQUIRE_ALL=1 requires every optional tool", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def need(*tools: str) -> None:
    """Inside a test: every tool named must be on PATH (else :func:`missing`)."""
    for tool in tools:
        if shutil.which(tool) is None:
            missing(tool)


def needs(*tools: str) -> pytest.MarkDecorator:
    """A mark: the test needs these tools on PATH (checked at set-up by :func:`need`)."""
    return pytest.mark.needs(*tools)


def need_module(name: str):
    """A Python package the tests need but the tool does not (torch): imported, or :func:`missing`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(name)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*tools): the tools on PATH the test needs (skipped, or failed in CI)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        need(*mark.args)


@pytest.fixture(scope="session")
def torch_module():
    return need_module("torch")


ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEED_KERAS = FIXTURES / "seed_mlp.keras"
SEED_H5 = FIXTURES / "seed_mlp.h5"
GOLDEN = FIXTURES / "golden"
ZOO_KERAS = sorted((FIXTURES / "zoo").glob("*.keras"))
ZOO_H5 = sorted((FIXTURES / "zoo").glob("*.h5"))
ALL_MODEL_FILES = [SEED_KERAS, SEED_H5, *ZOO_KERAS, *ZOO_H5]


@pytest.fixture(scope="session")
def keras_module():
    from converter.readers.keras import import_keras

    return import_keras()


@pytest.fixture(scope="session")
def load_model(keras_module):
    """Load a model file with Keras itself (the reference), once per path per session."""
    cache = {}

    def load(path: Path):
        if path not in cache:
            cache[path] = keras_module.saving.load_model(path, compile=False, safe_mode=True)
        return cache[path]

    return load


@pytest.fixture(scope="session")
def read_fixture():
    """``read_model`` of a fixture file, once per (path, reader) per session. Tests that compare what readers
    give need not probe and read the same file again (each read runs the HDF5 probe, ~0.2 s); the reading
    itself is tested where it is the subject."""
    from converter.readers import read_model

    cache = {}

    def read(path: Path, reader: str = "auto"):
        key = (Path(path), reader)
        if key not in cache:
            cache[key] = read_model(path, reader)
        return cache[key]

    return read


def reference_weights(model) -> list[np.ndarray]:
    """What the classic recipe sees: get_weights() of each top-level layer, in order, shared variables once."""
    seen, arrays = set(), []
    for layer in model.layers:
        for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
            if id(variable) not in seen:
                seen.add(id(variable))
                arrays.append(value)
    return arrays


def assert_bit_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same dtype, same shape, same bytes in C order (NaN payloads and -0.0 included)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype.name == expected.dtype.name
    assert actual.shape == expected.shape
    assert canonical(actual).tobytes() == canonical(expected).tobytes()


def with_edited_config(source: Path, target: Path, edit) -> Path:
    """A copy of the ``.keras`` archive ``source`` whose ``config.json`` ``edit(config)`` changed in place: a
    crafted file, weights untouched."""
    import json
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            new.writestr(info, data)
    return target


def calibration_samples(model_path, count: int = 16, seed: int = 0) -> dict:
    """Seeded normal samples for each input of a model the C forward pass accepts, by input name (--calibration)."""
    from converter.cgen import graph as graphs
    from converter.cgen.codegen import input_shapes
    from converter.readers import read_model

    found = graphs.from_config(read_model(model_path).config)
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 1, (count, *shape)).astype(np.float32)
            for name, shape in zip(found.inputs, input_shapes(found))}
