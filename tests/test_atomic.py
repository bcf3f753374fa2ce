"""Output files hashed as they are written: the digest must always equal hashlib over the file's bytes."""
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from converter import atomic


def on_disk(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def written(path, fill, text=False) -> str:
    output = atomic.HashedOutput(path, text=text)
    with output as out:
        fill(out)
    return output.sha256


def test_a_file_written_front_to_back_is_hashed_on_the_way(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    monkeypatch.setattr(atomic, "read_sha256", lambda _: "not read again")  # the digest must come from writing
    digest = written(path, lambda out: (out.write(b"x" * 3_000_000), out.write(memoryview(bytes(range(256))))))
    assert digest == on_disk(path)


def test_large_writes_are_hashed_block_by_block_on_a_second_thread_in_order(tmp_path, monkeypatch):
    data = np.random.default_rng(0).integers(0, 256, size=3 * atomic.HASH_BLOCK + 12345, dtype=np.uint8)
    path = tmp_path / "big.bin"
    monkeypatch.setattr(atomic, "read_sha256", lambda _: "not read again")

    def fill(out):
        out.write(b"head")
        out.write(data)  # a numpy buffer, as the safetensors writer passes, split into blocks
        out.write(memoryview(data)[: atomic.HASH_BLOCK + 1])

    assert written(path, fill) == on_disk(path)
    assert path.read_bytes() == b"head" + data.tobytes() + data[: atomic.HASH_BLOCK + 1].tobytes()


def test_a_file_written_out_of_order_is_read_again(tmp_path):
    def fill(out):
        out.write(b"0123456789")
        out.flush()
        out.seek(2)
        out.write(b"ab")

    path = tmp_path / "b.bin"
    assert written(path, fill) == on_disk(path) == hashlib.sha256(b"01ab456789").hexdigest()


def test_text_output_is_hashed_as_written(tmp_path):
    path = tmp_path / "c.h"
    assert written(path, lambda out: out.write("line\n" * 100_000), text=True) == on_disk(path)


def test_pyarrow_writes_through_it_front_to_back(tmp_path):
    path = tmp_path / "d.parquet"

    def fill(sink):
        with pq.ParquetWriter(sink, pa.schema([("x", pa.int64())])) as writer:
            writer.write_table(pa.table({"x": list(range(1000))}))

    assert written(path, fill) == on_disk(path)


def test_a_failed_write_has_no_digest(tmp_path):
    output = atomic.HashedOutput(tmp_path / "e.bin")
    try:
        with output as out:
            out.write(b"partial")
            raise OSError("disk full")
    except OSError:
        pass
    assert output.sha256 is None
