import ml_dtypes
import numpy as np
import pytest

from converter import dtypes, manifest


def test_schema_lists_exactly_the_supported_dtypes():
    enum = manifest.schema()["properties"]["tensors"]["items"]["properties"]["dtype"]["enum"]
    assert enum == [d.name for d in dtypes.TABLE]


@pytest.mark.parametrize("entry", dtypes.TABLE, ids=lambda d: d.name)
def test_storage_and_carrier_types_hold_every_value_exactly(entry):
    assert entry.npz_storage.itemsize == entry.numpy.itemsize  # a bit-pattern view, not a conversion
    if entry.numpy.kind == "b":
        return
    info = np.iinfo(entry.numpy) if entry.numpy.kind in "iu" else ml_dtypes.finfo(entry.numpy)
    for value in (info.min, info.max):
        carried = np.array([value], entry.numpy).astype(entry.parquet_carrier)
        assert carried.astype(entry.numpy).tobytes() == np.array([value], entry.numpy).tobytes()


def test_lookup_ignores_byte_order_and_rejects_unknown_names():
    assert dtypes.lookup(np.dtype(">i2")).name == "int16"
    with pytest.raises(dtypes.UnsupportedDType):
        dtypes.by_name("complex64")
