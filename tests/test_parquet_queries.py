"""The Parquet file as analysts use it: DuckDB SQL, pandas and pyarrow, with no help from us."""
import duckdb
import numpy as np
import pandas as pd
import pytest

import converter
from conftest import FIXTURES, ROOT, SEED_KERAS, reference_weights

DOC_QUERIES = [block.split("```")[0] for block in (ROOT / "docs" / "formats.md").read_text().split("```sql\n")[1:]]


def doc_query(number: int, path) -> str:
    """A query of docs/formats.md as written there, run against ``path`` instead of out/seed_mlp.parquet."""
    assert "'out/seed_mlp.parquet'" in DOC_QUERIES[number]
    return DOC_QUERIES[number].strip().rstrip(";").replace("'out/seed_mlp.parquet'", f"'{path}'")


@pytest.fixture(scope="module")
def seed_parquet(tmp_path_factory):
    out = tmp_path_factory.mktemp("pq")
    converter.export(SEED_KERAS, out, formats=["parquet"])
    return out / "seed_mlp.parquet"


def test_duckdb_query_from_the_docs(seed_parquet, load_model):
    """The first query of docs/formats.md, run as written against the exported file."""
    rows = duckdb.sql(doc_query(0, seed_parquet)).fetchall()
    expected = dict(zip([t.name for t in converter.extract(SEED_KERAS)], reference_weights(load_model(SEED_KERAS)), strict=True))
    assert [r[0] for r in rows] == sorted(expected, key=lambda n: (n.split("/")[0], n))
    for name, dtype, shape, n, lo, hi in rows:
        array = expected[name]
        assert (dtype, list(shape), n) == ("float32", list(array.shape), array.size)
        assert (np.float32(lo), np.float32(hi)) == (array.min(), array.max())


def test_duckdb_unnests_values_bit_exactly(seed_parquet, load_model):
    values = duckdb.sql(f"SELECT unnest(values) FROM '{seed_parquet}' WHERE name = 'dense_1/kernel'").fetchnumpy()
    column = next(iter(values.values()))
    expected = reference_weights(load_model(SEED_KERAS))[2]
    assert np.asarray(column, dtype=np.float32).tobytes() == expected.reshape(-1).tobytes()


def test_pandas_reads_one_row_per_tensor(seed_parquet, load_model):
    frame = pd.read_parquet(seed_parquet)
    assert list(frame["name"]) == [t.name for t in converter.extract(SEED_KERAS)]
    kernel = np.asarray(frame.loc[0, "values"], dtype=np.float32).reshape(list(frame.loc[0, "shape"]))
    assert kernel.tobytes() == reference_weights(load_model(SEED_KERAS))[0].tobytes()


def test_duckdb_reads_mixed_precision_models(tmp_path):
    converter.export(FIXTURES / "zoo" / "half.keras", tmp_path, formats=["parquet"])
    rows = duckdb.sql(f"SELECT name, dtype, len(values) FROM '{tmp_path / 'half.parquet'}'").fetchall()
    assert [(r[0], r[1]) for r in rows][:4] == [("f16/kernel", "float16"), ("f16/bias", "float16"),
                                                ("bf16/kernel", "bfloat16"), ("bf16/bias", "bfloat16")]


def test_duckdb_unnests_one_tensor_with_the_docs_query(seed_parquet, load_model):
    """The second query of docs/formats.md: one tensor's values, one per row, bit-exact."""
    values = duckdb.sql(doc_query(1, seed_parquet)).fetchnumpy()["value"]
    expected = reference_weights(load_model(SEED_KERAS))[2]
    assert np.asarray(values, np.float32).tobytes() == expected.reshape(-1).tobytes()


def test_the_docs_pandas_code_gets_a_large_tensor_whole(tmp_path, monkeypatch):
    """docs/formats.md's pandas lines, run as written on an export with a tensor of several row groups' worth."""
    from converter.formats import parquet
    from converter.tensors import Tensor

    big = np.random.default_rng(0).standard_normal(parquet.ROW_GROUP_VALUES * 2 + 72).astype(np.float32).reshape(-1, 8)
    (tmp_path / "out").mkdir()
    converter.formats.FORMATS["parquet"].write([Tensor("d/b", "d", "b", 0, True, np.ones(3, np.float32)),
                                                Tensor("dense_1/kernel", "dense_1", "kernel", 0, True, big)],
                                               tmp_path / "out" / "seed_mlp.parquet")
    code = (ROOT / "docs" / "formats.md").read_text().split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - our own documentation
    assert scope["kernel"].dtype == np.float32 and scope["kernel"].tobytes() == big.tobytes()
