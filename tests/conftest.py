"""Shared fixtures: models are loaded with Keras once per session (importing TensorFlow costs ~5 s)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from converter.tensors import canonical

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
