"""Property-based round trips: random shapes (zero-size and scalars too), every dtype, random bit patterns
(NaN payloads included), Fortran order and byte-swapped arrays, through every format."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converter import FORMATS, Tensor, dtypes
from converter.dtypes import restore as _restore
from conftest import assert_bit_identical
from test_formats import write_and_read

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def arrays(draw):
    entry = draw(st.sampled_from(dtypes.TABLE))
    shape = draw(shapes)
    size = int(np.prod(shape)) if shape else 1
    raw = draw(st.binary(min_size=size * entry.numpy.itemsize, max_size=size * entry.numpy.itemsize))
    bits = np.frombuffer(raw, dtype=f"<u{entry.numpy.itemsize}")  # any bit pattern: NaN payloads included
    array = (bits.astype(bool) if entry.numpy == np.bool_ else bits.view(entry.numpy)).reshape(shape).copy()
    if draw(st.booleans()) and array.ndim > 1:
        array = np.asfortranarray(array)
    if draw(st.booleans()) and entry.numpy.kind in "fiu" and entry.numpy.itemsize > 1:
        array = array.astype(array.dtype.newbyteorder(">"))  # same values, other byte order
    return array


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(arrays(), min_size=1, max_size=4), format_name=st.sampled_from(list(FORMATS)))
def test_any_tensors_round_trip_bit_exactly(tmp_path_factory, values, format_name):
    folder = tmp_path_factory.mktemp("prop")
    tensors = [Tensor(f"layer{i}/w", f"layer{i}", "w", i, True, v) for i, v in enumerate(values)]
    back = write_and_read(format_name, tensors, folder)
    for tensor in tensors:
        assert_bit_identical(_restore(back[tensor.name], tensor.dtype), tensor.array)
