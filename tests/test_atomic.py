"""Output files hashed as they are written: the digest must always equal hashlib over the file's bytes."""
import hashlib

import pyarrow as pa
import pyarrow.parquet as pq

from converter import atomic


def on_disk(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_written_front_to_back_is_hashed_on_the_way(tmp_path):
    path = tmp_path / "a.bin"
    with atomic.create(path) as out:
        out.write(b"x" * 3_000_000)
        out.write(memoryview(bytes(range(256))))
    assert atomic._DIGESTS[str(path)][2] == on_disk(path)
    assert atomic.file_sha256(path) == on_disk(path)


def test_large_writes_are_hashed_block_by_block_on_a_second_thread_in_order(tmp_path):
    import numpy as np

    data = np.random.default_rng(0).integers(0, 256, size=3 * atomic.HASH_BLOCK + 12345, dtype=np.uint8)
    path = tmp_path / "big.bin"
    with atomic.create(path) as out:
        out.write(b"head")
        out.write(data)  # a numpy buffer, as the safetensors writer passes, split into blocks
        out.write(memoryview(data)[: atomic.HASH_BLOCK + 1])
    assert atomic._DIGESTS[str(path)][2] == on_disk(path)  # the digest made while writing
    assert path.read_bytes() == b"head" + data.tobytes() + data[: atomic.HASH_BLOCK + 1].tobytes()


def test_a_file_written_out_of_order_is_read_again(tmp_path):
    path = tmp_path / "b.bin"
    with atomic.create(path) as out:
        out.write(b"0123456789")
        out.flush()
        out.seek(2)
        out.write(b"ab")
    assert str(path) not in atomic._DIGESTS
    assert atomic.file_sha256(path) == on_disk(path) == hashlib.sha256(b"01ab456789").hexdigest()


def test_a_file_changed_after_writing_is_read_again(tmp_path):
    path = tmp_path / "c.bin"
    with atomic.create(path) as out:
        out.write(b"first")
    path.write_bytes(b"second, longer")
    assert atomic.file_sha256(path) == on_disk(path)


def test_pyarrow_writes_through_it_front_to_back(tmp_path):
    path = tmp_path / "d.parquet"
    with atomic.create(path) as sink, pq.ParquetWriter(sink, pa.schema([("x", pa.int64())])) as writer:
        writer.write_table(pa.table({"x": list(range(1000))}))
    assert str(path) in atomic._DIGESTS
    assert atomic.file_sha256(path) == on_disk(path)
