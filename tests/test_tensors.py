import hashlib

import ml_dtypes
import numpy as np
import pytest

from converter import Tensor, UnsupportedDType
from converter.tensors import canonical


def make(array) -> Tensor:
    return Tensor("l/kernel", "l", "kernel", 0, True, array)


def test_fortran_and_strided_arrays_become_c_ordered_with_the_same_logical_values():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    for view in (np.asfortranarray(base), base[:, ::2], base.T):
        tensor = make(view)
        assert tensor.array.flags.c_contiguous
        assert tensor.array.tobytes() == np.array(view, order="C").tobytes()


def test_big_endian_arrays_become_little_endian_with_the_same_values():
    big = np.array([1.5, -2.25, 3e-42], dtype=">f4")
    tensor = make(big)
    assert tensor.array.dtype.str == "<f4"
    assert tensor.array.tobytes() == np.array([1.5, -2.25, 3e-42], dtype="<f4").tobytes()
    assert tensor.sha256 == hashlib.sha256(np.array([1.5, -2.25, 3e-42], "<f4").tobytes()).hexdigest()


def test_the_callers_array_is_neither_copied_into_nor_made_read_only():
    original = np.ones((2, 2), dtype=np.float32)
    tensor = make(original)
    assert original.flags.writeable and not tensor.array.flags.writeable
    original[0, 0] = 5.0  # the record may share memory, but never locks or edits the caller's array
    assert original[0, 0] == 5.0


def test_bfloat16_keeps_its_dtype():
    tensor = make(np.array([1.0, -0.0], dtype=ml_dtypes.bfloat16))
    assert tensor.dtype == "bfloat16" and tensor.nbytes == 4


@pytest.mark.parametrize("bad", [np.array(["a"]), np.array([1 + 2j]), np.array([object()])])
def test_unsupported_dtypes_are_refused_with_the_supported_list(bad):
    with pytest.raises(UnsupportedDType) as caught:
        make(bad)
    assert "float32" in caught.value.hint


def test_zero_size_and_scalar_tensors():
    assert make(np.zeros((0, 3), np.float32)).sha256 == hashlib.sha256(b"").hexdigest()
    scalar = make(np.float32(2.5))
    assert scalar.shape == () and scalar.array.tobytes() == np.float32(2.5).tobytes()


def test_canonical_never_mutates_its_input_flags():
    array = np.zeros(3, np.float32)
    canonical(array)
    assert array.flags.writeable


@pytest.mark.parametrize("positions", [[], [5], [(1 << 20) + 3, 7], [3 * (1 << 20) - 1]])
def test_non_finite_counts_and_first_index_across_scan_blocks(positions):
    array = np.zeros((3, 1 << 20), np.float32)  # three scan blocks
    flat = array.reshape(-1)
    for i, position in enumerate(positions):
        flat[position] = [np.nan, -np.inf][i % 2]
    nan, inf, first = make(array).non_finite
    assert (nan, inf) == (int(np.isnan(array).sum()), int(np.isinf(array).sum()))
    expected = np.unravel_index(min(positions), array.shape) if positions else None
    assert first == (tuple(int(i) for i in expected) if positions else None)
