"""Every registered format, every dtype: write records, read them back with the format's own reader."""
import zipfile

import ml_dtypes
import numpy as np
import pytest

from converter import FORMATS, Tensor, dtypes
from converter.dtypes import restore as _restore
from converter.formats import parquet

from conftest import assert_bit_identical


def special_values(dtype: np.dtype) -> np.ndarray:
    """Edge values of a dtype: extremes, signed zero, denormals, NaN and infinities where they exist."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.array([info.min, info.max, 0, 1, info.max // 3], dtype=dtype)
    if dtype.kind == "b":
        return np.array([True, False, True])
    info = ml_dtypes.finfo(dtype)
    values = [0.0, -0.0, 1.0, -1.5, float(info.max), float(info.min), float(info.smallest_subnormal),
              -float(info.smallest_subnormal), float(info.tiny), np.nan]
    if dtype.name != "float8_e4m3fn":  # e4m3fn has no infinities
        values += [np.inf, -np.inf]
    return np.array(values, dtype=np.float64).astype(dtype)


def zoo_tensors(dtype: np.dtype) -> list[Tensor]:
    rng = np.random.default_rng(7)
    is_float = "float" in dtype.name
    random = (rng.normal(size=(3, 4, 5)) if is_float else rng.integers(0, 2, size=(3, 4, 5))).astype(dtype)
    return [
        Tensor("a/special", "a", "special", 0, True, special_values(dtype)),
        Tensor("a/fortran", "a", "fortran", 0, True, np.asfortranarray(random)),
        Tensor("b/strided", "b", "strided", 1, False, random[:, ::2, 1:]),
        Tensor("b/empty", "b", "empty", 1, True, np.zeros((0, 4), dtype)),
        Tensor("c/scalar", "c", "scalar", 2, True, random.reshape(-1)[:1].reshape(())),
    ]


def big_endian_tensors() -> list[Tensor]:
    return [Tensor("be/f4", "be", "f4", 0, True, np.array([[1.0, -2.5], [3e-40, 7.0]], dtype=">f4")),
            Tensor("be/i2", "be", "i2", 0, True, np.array([-300, 2], dtype=">i2"))]


def write_and_read(format_name: str, tensors: list[Tensor], folder, stem: str = "t") -> dict[str, np.ndarray]:
    """Write through the registry face and read every written file back: ``{tensor name: array}``."""
    module = FORMATS[format_name]
    names = module.files(stem)
    module.write(tensors, folder / names[0])
    found = {}
    for name in names:
        found.update(module.read(folder / name))
    keys = module.keys(tensors, stem)
    assert sorted(found) == sorted(keys.values())
    return {t.name: found[keys[t.name]] for t in tensors}


@pytest.mark.parametrize("entry", dtypes.TABLE, ids=lambda d: d.name)
@pytest.mark.parametrize("format_name", FORMATS)
def test_round_trip_is_bit_exact_for_every_dtype(tmp_path, format_name, entry):
    tensors = zoo_tensors(entry.numpy)
    back = write_and_read(format_name, tensors, tmp_path)
    for tensor in tensors:
        assert_bit_identical(_restore(back[tensor.name], tensor.dtype), tensor.array)


@pytest.mark.parametrize("format_name", FORMATS)
def test_big_endian_input_is_written_little_endian_with_the_same_values(tmp_path, format_name):
    back = write_and_read(format_name, big_endian_tensors(), tmp_path)
    assert back["be/f4"].dtype.byteorder in "<=|"
    np.testing.assert_array_equal(back["be/f4"], np.array([[1.0, -2.5], [3e-40, 7.0]], dtype="<f4"))
    np.testing.assert_array_equal(back["be/i2"], np.array([-300, 2], dtype="<i2"))


@pytest.mark.parametrize("format_name", FORMATS)
def test_output_does_not_depend_on_run(tmp_path, format_name):
    module = FORMATS[format_name]
    for run in ("1", "2"):
        (tmp_path / run).mkdir()
        module.write(zoo_tensors(np.dtype(np.float32)), tmp_path / run / module.files("t")[0])
    for name in module.files("t"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_npz_loads_without_pickle_and_keys_are_names(tmp_path):
    path = tmp_path / "w.npz"
    FORMATS["npz"].write(zoo_tensors(np.dtype(np.float32)), path)
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == ["a/special", "a/fortran", "b/strided", "b/empty", "c/scalar"]
        assert archive["b/strided"].shape == (3, 2, 4)
    with zipfile.ZipFile(path) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_npz_stores_bfloat16_as_its_uint16_bit_patterns(tmp_path):
    values = np.array([1.0, -0.0, 3.0], dtype=ml_dtypes.bfloat16)
    FORMATS["npz"].write([Tensor("x/w", "x", "w", 0, True, values)], tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as archive:
        stored = archive["x/w"]
    assert stored.dtype == np.uint16
    assert stored.tolist() == [0x3F80, 0x8000, 0x4040]  # bfloat16 = top 16 bits of the float32


def test_safetensors_exact_bytes_for_a_small_file(tmp_path):
    """Pinned bytes: the 8-byte header length, the JSON header (sorted keys, no spaces, padded with spaces to
    a multiple of 8 as the format allows), then the data, larger items first."""
    from converter import __version__

    tensors = [Tensor("l/b", "l", "b", 0, True, np.array([1.0, 2.0], np.float32)),
               Tensor("l/a", "l", "a", 0, True, np.array([3], np.int8))]
    FORMATS["safetensors"].write(tensors, tmp_path / "w.safetensors")
    header = ('{"__metadata__":{"format":"np","producer":"keras-weights ' + __version__ + '"},'
              '"l/a":{"data_offsets":[8,9],"dtype":"I8","shape":[1]},'
              '"l/b":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}').encode()
    header += b" " * (-len(header) % 8)
    expected = len(header).to_bytes(8, "little") + header + bytes.fromhex("0000803f 00000040 03")
    assert (tmp_path / "w.safetensors").read_bytes() == expected


def test_safetensors_non_contiguous_arrays_read_back_right_with_safe_open(tmp_path):
    """safetensors 0.8.0 writes raw memory of non-contiguous arrays (upstream issue 825); we must not."""
    from safetensors import safe_open

    base = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    views = {"t/transposed": base.T, "t/strided": base[:, ::2, ::-1], "t/fortran": np.asfortranarray(base)}
    FORMATS["safetensors"].write([Tensor(k, "t", k, 0, True, v) for k, v in views.items()], tmp_path / "w.safetensors")
    with safe_open(str(tmp_path / "w.safetensors"), framework="np") as handle:
        assert handle.metadata()["format"] == "np"
        for key, view in views.items():
            np.testing.assert_array_equal(handle.get_tensor(key), view)


def test_parquet_columns_and_types(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from converter.tensors import ExportInfo, ModelWeights, Source

    model = ModelWeights("m", "", None, None, (), (), Source(None, "keras.Model", None, "keras"))
    info = ExportInfo(model, manifest_json='{"model": {"name": "m"}}')
    FORMATS["parquet"].write(zoo_tensors(np.dtype(np.float16)), tmp_path / "w.parquet", info=info)
    table = pq.read_table(tmp_path / "w.parquet")
    assert table.column_names == ["name", "layer", "role", "layer_index", "trainable", "kind", "dtype", "shape",
                                  "values", "sha256", "payload_index", "payload_bits"]
    assert table.schema.field("values").type.value_type == pa.float32()
    assert table.column("shape").to_pylist()[3] == [0, 4]
    assert parquet.embedded_manifest(tmp_path / "w.parquet") == {"model": {"name": "m"}}


def test_parquet_mixed_dtypes_promote_to_an_exact_common_type(tmp_path):
    tensors = [Tensor("a/x", "a", "x", 0, True, np.array([0.1], np.float32)),
               Tensor("a/y", "a", "y", 0, True, np.array([2**31 - 1, -2**31], np.int32))]
    assert parquet.values_type(tensors) == np.float64
    FORMATS["parquet"].write(tensors, tmp_path / "w.parquet")
    back = FORMATS["parquet"].read(tmp_path / "w.parquet")
    assert_bit_identical(back["a/y"], tensors[1].array)
    assert_bit_identical(back["a/x"], tensors[0].array)


def test_parquet_has_one_row_per_tensor_however_large_and_keeps_every_bit(tmp_path):
    """A tensor of several row groups' worth of values is one row (what ``df[df.name == n].values[0]`` needs); small
    tensors share a row group; a NaN payload the float64 carrier drops is kept."""
    import ml_dtypes
    import pyarrow.parquet as pq

    big = np.arange(2 * parquet.ROW_GROUP_VALUES + 5, dtype=np.float32).astype(ml_dtypes.bfloat16)
    big.view(np.uint16)[-3] = 0x7FC1  # a quiet NaN with a payload, at the end
    small = [Tensor(f"a/n{i}", "a", f"n{i}", 0, True, np.array([i], np.int32)) for i in range(3)]
    tensors = [small[0], Tensor("a/big", "a", "big", 0, True, big), *small[1:]]
    FORMATS["parquet"].write(tensors, tmp_path / "w.parquet")
    handle = pq.ParquetFile(tmp_path / "w.parquet")
    table = handle.read(columns=["name", "values", "payload_index"]).to_pylist()
    assert [r["name"] for r in table] == ["a/n0", "a/big", "a/n1", "a/n2"]
    assert len(table[1]["values"]) == big.size and table[1]["payload_index"] == [big.size - 3]
    assert [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)] == [1, 1, 2]
    back = FORMATS["parquet"].read(tmp_path / "w.parquet")
    for tensor in tensors:
        assert_bit_identical(back[tensor.name], tensor.array)


def test_parquet_uses_64_bit_list_offsets_only_for_a_tensor_beyond_them(tmp_path, monkeypatch):
    """``large_list`` when a tensor has more values than a 32-bit-offset list holds (2**31 - 1; the limit is lowered
    here so the file stays small), ``list`` otherwise, so readers that predate large_list read every usual file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tensors = [Tensor("a/k", "a", "k", 0, True, np.arange(12, dtype=np.float32).reshape(3, 4)),
               Tensor("a/b", "a", "b", 0, True, np.arange(3, dtype=np.float32))]
    FORMATS["parquet"].write(tensors, tmp_path / "small.parquet")
    assert pa.types.is_list(pq.read_schema(tmp_path / "small.parquet").field("values").type)
    monkeypatch.setattr(parquet, "LIST_LIMIT", 10)
    FORMATS["parquet"].write(tensors, tmp_path / "large.parquet")
    assert pa.types.is_large_list(pq.read_schema(tmp_path / "large.parquet").field("values").type)
    back = FORMATS["parquet"].read(tmp_path / "large.parquet")
    for tensor in tensors:
        assert_bit_identical(back[tensor.name], tensor.array)


def test_parquet_files_that_split_tensors_over_rows_still_read(tmp_path):
    """Files written before one row per tensor split a tensor over rows with an ``offset`` column; converter.read,
    verify and diff read them the same."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kernel = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    rows = [{"name": "d/kernel", "dtype": "float32", "shape": [5, 4], "offset": start,
             "values": kernel.reshape(-1)[start:start + 8].tolist(), "payload_index": [], "payload_bits": []}
            for start in (0, 8, 16)]
    old = pa.schema([("name", pa.string()), ("dtype", pa.string()), ("shape", pa.list_(pa.int64())),
                     ("offset", pa.int64()), ("values", pa.list_(pa.float32())), ("payload_index", pa.list_(pa.int64())),
                     ("payload_bits", pa.list_(pa.uint64()))])
    pq.write_table(pa.Table.from_pylist(rows, schema=old), tmp_path / "old.parquet", row_group_size=2)
    assert_bit_identical(FORMATS["parquet"].read(tmp_path / "old.parquet")["d/kernel"], kernel)


def test_parquet_holds_64_bit_integers_beside_floats_exactly(tmp_path):
    """float64 values carry what they can; the rest is exact in payload_bits, and DuckDB-style readers
    that only look at ``values`` still see every other value."""
    import pyarrow.parquet as pq

    big = [2**62 + 1, -(2**63), 2**53 + 1, 7]
    tensors = [Tensor("a/x", "a", "x", 0, True, np.array([0.5], np.float32)),
               Tensor("a/y", "a", "y", 0, True, np.array(big, np.int64)),
               Tensor("a/z", "a", "z", 0, True, np.array([2**64 - 1, 3], np.uint64))]
    FORMATS["parquet"].write(tensors, tmp_path / "w.parquet")
    back = FORMATS["parquet"].read(tmp_path / "w.parquet")
    assert back["a/y"].tolist() == big and back["a/z"].tolist() == [2**64 - 1, 3] and back["a/x"].tolist() == [0.5]
    rows = {row["name"]: row for row in pq.read_table(tmp_path / "w.parquet").to_pylist()}
    assert rows["a/y"]["payload_index"] == [0, 2] and rows["a/y"]["values"][3] == 7.0
    assert rows["a/z"]["payload_index"] == [0]


def test_c_read_back_parses_large_arrays_block_by_block(tmp_path, monkeypatch):
    """Arrays whose text spans several parse blocks, special values included, come back bit-exactly."""
    from converter.formats import c_parse

    monkeypatch.setattr(c_parse, "PARSE_BLOCK", 4096)  # small blocks: many boundaries in small arrays
    rng = np.random.default_rng(11)
    floats = rng.standard_normal(c_parse.PARSE_BLOCK // 8).astype(np.float32)  # ~2.5 blocks of literals
    floats[[7, floats.size // 2, -1]] = [np.nan, -np.inf, -0.0]
    floats.view(np.uint32)[floats.size // 3] = 0x7FC12345  # a NaN payload
    tensors = [Tensor("a/f", "a", "f", 0, True, floats),
               Tensor("a/d", "a", "d", 0, True, rng.standard_normal(c_parse.PARSE_BLOCK // 16)),
               Tensor("a/i", "a", "i", 0, True, rng.integers(-128, 128, c_parse.PARSE_BLOCK // 3, dtype=np.int8))]
    back = write_and_read("c", tensors, tmp_path)
    for tensor in tensors:
        assert_bit_identical(back[tensor.name], tensor.array)


def test_npz_member_names_are_safe_and_every_tensor_keeps_its_own(tmp_path):
    """Names from a model file may hold ../, absolute paths, control characters, a .npy ending numpy strips,
    or be very long: the npz keys are mapped (the manifest records them) so that unzipping writes nowhere
    else and no tensor shadows another."""
    names = ["../../evil/kernel", "/abs/bias", "a\nb", "a_b", "x.npy", "x", "y" * 200_000, "dense/kernel"]
    tensors = [Tensor(name, "l", "w", 0, True, np.full(2, i, np.float32)) for i, name in enumerate(names)]
    FORMATS["npz"].write(tensors, tmp_path / "w.npz")
    keys = FORMATS["npz"].keys(tensors)
    with zipfile.ZipFile(tmp_path / "w.npz") as archive:
        members = archive.namelist()
    assert len(set(members)) == len(names)
    assert all(not m.startswith("/") and ".." not in m.split("/") and "\n" not in m and len(m) < 300 for m in members)
    back = FORMATS["npz"].read(tmp_path / "w.npz")
    assert [back[keys[name]][0] for name in names] == list(range(len(names)))
    assert keys["dense/kernel"] == "dense/kernel" and keys["a_b"] == "a_b"
