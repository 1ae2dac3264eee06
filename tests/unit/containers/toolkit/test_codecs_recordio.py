"""RecordIO-protobuf: the bytes of docs/reference/formats.md#byte-examples, byte equality with the SageMaker SDK
writers, round trips, errors."""

from __future__ import annotations

import io
import mmap
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from containers.toolkit.codecs import (
    decode_label_records,
    encode_label_records,
    iter_recordio_batches,
    iter_records,
    read_recordio,
    recordio,
    write_recordio,
)
from containers.toolkit.codecs.recordio import iter_mapped_recordio_pieces
from containers.toolkit.errors import UserError

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
sdk_common = pytest.importorskip("sagemaker.amazon.common")

VALUES_KEY = b"\x0a\x06values"


def sdk_bytes(features, labels=None) -> bytes:
    buffer = io.BytesIO()
    if sp.issparse(features):
        sdk_common.write_spmatrix_to_sparse_tensor(buffer, features, labels)
    else:
        sdk_common.write_numpy_to_dense_tensor(buffer, features, labels)
    return buffer.getvalue()


def dense_of(features) -> np.ndarray:
    return features.toarray() if sp.issparse(features) else np.asarray(features)


# --------------------------------------------------------------------------- docs/reference/formats.md#byte-examples


def test_spec_example_float32_row_with_label():
    expected = bytes.fromhex(
        "0a23d7ce30000000"
        "0a1a0a0676616c7565731210120e0a0c0000803f0000004000004040"
        "12120a0676616c756573120812060a040000803f"
    )
    data = write_recordio(np.array([[1, 2, 3]], dtype=np.float32), np.array([1.0], dtype=np.float32))
    assert data == expected
    assert len(data) == 56


def test_spec_example_float64_rows():
    data = write_recordio(np.array([[1.5, 2.0], [3.0, 4.0]]))
    first = b"\x0a\x23\xd7\xce\x20\x00\x00\x00\x0a\x1e" + VALUES_KEY + b"\x12\x14\x1a\x12\x0a\x10"
    assert data == first + struct.pack("<2d", 1.5, 2.0) + first + struct.pack("<2d", 3.0, 4.0)


def test_spec_example_int_row_is_35_bytes_plus_one_pad():
    data = write_recordio(np.array([[1, 2]]), np.array([0]))
    assert struct.unpack_from("<II", data) == (0xCED7230A, 35)
    assert len(data) == 8 + 35 + 1
    assert data[-1] == 0
    assert b"\x3a\x04\x0a\x02\x01\x02" in data  # Value.int32_tensor, packed varints 1, 2


def test_spec_example_sparse_row():
    data = write_recordio(sp.csr_matrix(np.array([[0, 0, 5, 0]], dtype=np.float32)), np.array([1.0], np.float32))
    head = bytes.fromhex("0a23d7ce2e000000") + b"\x0a\x18" + VALUES_KEY
    head += bytes.fromhex("120e 120c 0a04 0000a040 120102 1a0104")
    assert data.startswith(head)
    assert len(data) == 8 + 46 + 2
    assert data.endswith(b"\x00\x00")


# ----------------------------------------------------------------------------------------------- SDK parity

SDK_CASES = {
    "float32": (np.arange(12, dtype=np.float32).reshape(4, 3) / 7, None),
    "float32+label": (np.arange(12, dtype=np.float32).reshape(4, 3), np.arange(4, dtype=np.float32)),
    "float64+float64 label": (np.linspace(-3, 3, 10).reshape(5, 2), np.linspace(0, 1, 5)),
    "float32+int label": (np.ones((3, 2), dtype=np.float32), np.array([0, 1, 2])),
    "int features": (np.array([[1, -2, 300], [0, 127, 128]]), np.array([-1, 5])),
    "large int label": (np.zeros((2, 2), dtype=np.float32), np.array([1000, 2**31 - 1])),
    "sparse float32": (sp.random(8, 20, density=0.2, format="csr", dtype=np.float32, rng=1), None),
    "sparse float64+label": (sp.random(5, 300, density=0.05, format="csr", rng=2), np.arange(5, dtype=np.float64)),
    "sparse int": (sp.csr_matrix(np.array([[0, 3, 0], [0, 0, 0], [-7, 0, 400]])), np.array([1, 0, 1])),
    "sparse all zero": (sp.csr_matrix((3, 2000), dtype=np.float32), None),
}


@pytest.mark.parametrize("name", list(SDK_CASES))
def test_matches_sdk_writer_and_reads_back(name):
    features, labels = SDK_CASES[name]
    expected = sdk_bytes(features, labels)
    assert write_recordio(features, labels) == expected
    batch = read_recordio(expected)
    assert sp.issparse(batch.features) == sp.issparse(features)
    np.testing.assert_array_equal(dense_of(batch.features), dense_of(features))
    if labels is None:
        assert batch.labels is None
    else:
        np.testing.assert_array_equal(batch.labels, labels)


def test_dtypes_are_kept():
    batch = read_recordio(sdk_bytes(np.ones((2, 2), dtype=np.float32), np.array([1, 2])))
    assert batch.features.dtype == np.float32
    assert batch.labels is not None
    assert batch.labels.dtype == np.int32


def test_unsupported_dtype_is_rejected_like_the_sdk():
    with pytest.raises(ValueError, match="Unsupported dtype"):
        write_recordio(np.array([["a"]]))


# ----------------------------------------------------------------------------------------------- properties

float_dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def dense_cases(draw):
    dtype = draw(float_dtypes)
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    features = draw(hnp.arrays(dtype, (rows, cols), elements=st.floats(-1e6, 1e6, width=32)))
    labels = None
    if draw(st.booleans()):
        labels = draw(
            hnp.arrays(
                draw(st.sampled_from([np.float32, np.float64, np.int64])), rows, elements=st.integers(-1000, 1000)
            )
        )
    return features, labels


@st.composite
def sparse_cases(draw):
    dense, labels = draw(dense_cases())
    mask = draw(hnp.arrays(np.bool_, dense.shape))
    return sp.csr_matrix(np.where(mask, dense, 0).astype(dense.dtype)), labels


@settings(max_examples=60, deadline=None)
@given(dense_cases() | sparse_cases())
def test_round_trip_and_sdk_parity(case):
    features, labels = case
    data = write_recordio(features, labels)
    assert data == sdk_bytes(features, labels)
    batch = read_recordio(data)
    np.testing.assert_array_equal(dense_of(batch.features), dense_of(features))
    if labels is None:
        assert batch.labels is None
    else:
        np.testing.assert_array_equal(batch.labels, labels)


@settings(max_examples=30, deadline=None)
@given(dense_cases() | sparse_cases(), st.integers(1, 5), st.integers(8, 64))
def test_streamed_batches_equal_whole_read(case, batch_rows, chunk_bytes):
    features, labels = case
    data = write_recordio(features, labels)
    batches = list(iter_recordio_batches(io.BytesIO(data), batch_rows, chunk_bytes=chunk_bytes))
    assert [b.n_rows for b in batches[:-1]] == [batch_rows] * (len(batches) - 1)
    joined = np.vstack([dense_of(b.features) for b in batches])
    np.testing.assert_array_equal(joined, dense_of(features))
    if labels is not None:
        np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), labels)


@settings(max_examples=30, deadline=None)
@given(dense_cases() | sparse_cases(), st.integers(1, 5), st.integers(8, 64))
def test_mapped_pieces_equal_whole_read(case, max_rows, chunk_bytes):
    features, labels = case  # records of up to ~70 bytes: windows of 8-64 bytes cut them and are widened
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.pbr"
        path.write_bytes(write_recordio(features, labels))
        pieces = list(iter_mapped_recordio_pieces(path, max_rows, chunk_bytes=chunk_bytes))
        assert all(0 < piece.n_rows <= max_rows for piece in pieces)
        np.testing.assert_array_equal(np.vstack([dense_of(p.features) for p in pieces]), dense_of(features))
        if labels is not None:
            np.testing.assert_array_equal(np.concatenate([p.labels for p in pieces]), labels)


def test_mapped_dense_values_are_read_only_views_of_the_file(tmp_path):
    path = tmp_path / "train.pbr"
    path.write_bytes(write_recordio(np.arange(60, dtype=np.float32).reshape(20, 3)))
    (piece,) = iter_mapped_recordio_pieces(path, 100)
    assert not piece.features.flags.writeable and piece.features.base is not None
    np.testing.assert_array_equal(piece.features, np.arange(60).reshape(20, 3))


def test_a_mapped_file_that_shrinks_while_read_is_a_user_error(tmp_path):
    path = tmp_path / "train.pbr"
    data = write_recordio(np.ones((30, 3), np.float32))  # 36-byte records
    path.write_bytes(data)
    pieces = iter_mapped_recordio_pieces(path, 100, chunk_bytes=360)
    assert next(pieces).n_rows == 10
    with path.open("r+b") as handle:
        handle.truncate(500)  # the first window's bytes stay; the next window's do not
    with pytest.raises(UserError, match="shrank while it was being read"):
        next(pieces)


def test_a_mapped_files_windows_grow_from_a_small_first_one_and_are_small_again_at_its_end(tmp_path, monkeypatch):
    monkeypatch.setattr(recordio, "FIRST_WINDOW_BYTES", 180)
    monkeypatch.setattr(recordio, "TAIL_WINDOW_BYTES", 180)
    path = tmp_path / "train.pbr"
    rows = np.arange(300, dtype=np.float32).reshape(100, 3)
    path.write_bytes(write_recordio(rows))  # 100 records of 36 bytes
    pieces = list(iter_mapped_recordio_pieces(path, 1000, chunk_bytes=720))
    # 5 records in the first window, then 10, then 20 a chunk until at most 2 chunks (40 records) are left, then 5
    assert [piece.n_rows for piece in pieces] == [5, 10, 20, 20, 20, 5, 5, 5, 5, 5]
    np.testing.assert_array_equal(np.vstack([piece.features for piece in pieces]), rows)


def test_each_window_is_unmapped_once_nothing_views_it(tmp_path):
    path = tmp_path / "train.pbr"
    path.write_bytes(write_recordio(np.ones((3000, 3), np.float32)))  # 108 KB of 36-byte records

    def mappings() -> int:
        return sum(str(path) in line for line in Path("/proc/self/maps").read_text().splitlines())

    held = list(iter_mapped_recordio_pieces(path, 1000, chunk_bytes=36000))
    assert len(held) == 3 and mappings() >= 2  # a mapping per window of 1000 records (adjacent ones may merge)
    del held
    assert mappings() == 0
    for piece in iter_mapped_recordio_pieces(path, 1000, chunk_bytes=36000):
        assert piece.n_rows and mappings() <= 2  # the previous window is gone once its piece is dropped


def test_a_file_that_cannot_be_mapped_is_read(tmp_path, monkeypatch):
    path = tmp_path / "train.pbr"
    rows = np.arange(60, dtype=np.float32).reshape(20, 3)
    path.write_bytes(write_recordio(rows))

    def no_mmap(*_args, **_kwargs):
        raise OSError(19, "No such device")  # what mmap raises on a file system that cannot map files

    monkeypatch.setattr(mmap, "mmap", no_mmap)
    pieces = list(iter_mapped_recordio_pieces(path, 8))
    assert [piece.n_rows for piece in pieces] == [8, 8, 4]
    np.testing.assert_array_equal(np.vstack([piece.features for piece in pieces]), rows)
    with pytest.raises(FileNotFoundError):  # a missing file is not taken for one that cannot be mapped
        list(iter_mapped_recordio_pieces(tmp_path / "missing.pbr", 8))


def test_mapped_empty_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.pbr"
    empty.write_bytes(b"")
    assert list(iter_mapped_recordio_pieces(empty, 10)) == []
    cut = tmp_path / "cut.pbr"
    cut.write_bytes(write_recordio(np.ones((5, 3), np.float32))[:-10])
    with pytest.raises(UserError, match="Truncated RecordIO record at offset 144"):
        list(iter_mapped_recordio_pieces(cut, 2, chunk_bytes=16))


# ----------------------------------------------------------------------------------------------- reading rules


def test_mixed_row_sizes_and_varying_int_labels_read_record_by_record():
    data = write_recordio(np.ones((3, 2), np.float32), np.array([1, 200, -3])) + write_recordio(
        np.full((2, 2), 2.0, np.float32), np.array([4, 5])
    )
    batch = read_recordio(data)
    np.testing.assert_array_equal(batch.labels, [1, 200, -3, 4, 5])
    np.testing.assert_array_equal(batch.features[:, 0], [1, 1, 1, 2, 2])


def test_dense_and_sparse_records_together_give_csr():
    data = write_recordio(np.array([[1.0, 2.0]], np.float32)) + write_recordio(
        sp.csr_matrix(np.array([[0, 0, 0, 9]], dtype=np.float32))
    )
    batch = read_recordio(data)
    assert sp.issparse(batch.features)
    np.testing.assert_array_equal(dense_of(batch.features), [[1, 2, 0, 0], [0, 0, 0, 9]])


def test_record_without_features_values_is_skipped():
    data = encode_label_records([{"score": 1.0}]) + write_recordio(np.array([[3.0]], np.float32))
    batch = read_recordio(data)
    np.testing.assert_array_equal(batch.features, [[3.0]])


def test_ragged_dense_records_name_the_record():
    data = write_recordio(np.ones((2, 3), np.float32)) + write_recordio(np.ones((1, 2), np.float32))
    with pytest.raises(UserError, match=r"Record 3 .* has 2 features"):
        read_recordio(data, source="train.rec")


def test_label_on_some_records_only_is_an_error():
    data = write_recordio(np.ones((1, 2)), np.array([1.0])) + write_recordio(np.ones((1, 2)))
    with pytest.raises(UserError, match=r"Record 2 .* no label"):
        read_recordio(data)


def test_sparse_key_beyond_shape_is_a_user_error():
    good = write_recordio(sp.csr_matrix(np.array([[0, 0, 7.0]], dtype=np.float32)))
    bad = good.replace(b"\x12\x01\x02\x1a\x01\x03", b"\x12\x01\x05\x1a\x01\x03")  # key 2 -> 5, shape 3
    assert bad != good
    with pytest.raises(UserError, match="key 5 is out of range for shape \\[3\\]"):
        read_recordio(bad, source="x.rec")


def test_bad_magic_names_the_offset():
    data = write_recordio(np.ones((2, 2), np.float32))
    broken = data[:32] + b"\x00\x00\x00\x00" + data[36:]  # records are 32 bytes: corrupt the second magic
    with pytest.raises(UserError, match=r"Invalid RecordIO magic 0x00000000 at offset 32 in f.rec"):
        read_recordio(broken, source="f.rec")


def test_cflag_is_rejected():
    data = bytearray(write_recordio(np.ones((1, 2), np.float32)))
    data[7] |= 0x20  # cflag = 1 in the top three bits of the length word
    with pytest.raises(UserError, match="cflag=1"):
        read_recordio(bytes(data))


@pytest.mark.parametrize("length", [3, 20, 40, 60, 71])
def test_truncated_record_is_an_error(length):
    data = write_recordio(np.ones((2, 3), np.float32))  # two records of 36 bytes
    with pytest.raises(UserError, match="Truncated RecordIO"):
        read_recordio(data[:length])


def test_truncated_stream_is_an_error_too():
    data = write_recordio(np.ones((5, 3), np.float32))[:-10]
    with pytest.raises(UserError, match="Truncated RecordIO record at offset"):
        list(iter_recordio_batches(io.BytesIO(data), 2, chunk_bytes=16))


def test_missing_final_padding_is_accepted():
    data = write_recordio(np.array([[1, 2]]), np.array([0]))
    assert read_recordio(data[:-1]).features.tolist() == [[1, 2]]


def test_garbage_payload_is_a_user_error():
    payload = b"\x0a\xff\xff"
    data = struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\x00"
    with pytest.raises(UserError, match=r"Record 1 .* not a valid aialgs.data.Record"):
        read_recordio(data)


def test_empty_input_gives_no_rows():
    assert read_recordio(b"").n_rows == 0
    assert list(iter_recordio_batches(io.BytesIO(b""), 10)) == []


def test_iter_records_yields_payloads():
    data = write_recordio(np.ones((3, 2), np.float32)) + write_recordio(np.ones((1, 5), np.float32))
    payloads = list(iter_records(io.BytesIO(data)))
    assert [len(p) for p in payloads] == [24, 24, 24, 36]
    assert payloads[0].startswith(b"\x0a\x16" + VALUES_KEY)


def test_unpacked_repeated_fields_are_read():
    # proto2 readers must accept non-packed repeated scalars: values as fixed32, keys and shape as varints
    tensor = b"\x0d" + struct.pack("<f", 2.5) + b"\x10\x01" + b"\x18\x03"
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = VALUES_KEY + b"\x12" + bytes([len(value)]) + value
    payload = b"\x0a" + bytes([len(entry)]) + entry
    data = struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * (-len(payload) % 4)
    np.testing.assert_array_equal(dense_of(read_recordio(data).features), [[0, 2.5, 0]])


# ----------------------------------------------------------------------------------------------- label records


def test_label_records_round_trip_and_read_by_the_sdk():
    rows: list[dict[str, Any]] = [{"closest_cluster": 1.0, "distance_to_cluster": 3.0}, {"projection": [1.0, 2.0, 0.5]}]
    data = encode_label_records(rows)
    assert decode_label_records(data) == [
        {"closest_cluster": [1.0], "distance_to_cluster": [3.0]},
        {"projection": [1.0, 2.0, 0.5]},
    ]
    records = sdk_common.read_records(io.BytesIO(data))
    assert records[0].label["closest_cluster"].float32_tensor.values[0] == 1.0
    assert list(records[1].label["projection"].float32_tensor.values) == [1.0, 2.0, 0.5]
    assert len(records[0].features) == 0


def test_label_record_bytes():
    data = encode_label_records([{"score": 0.5}])
    payload = b"\x12\x11\x0a\x05score\x12\x08\x12\x06\x0a\x04" + struct.pack("<f", 0.5)
    assert data == struct.pack("<II", 0xCED7230A, 19) + payload + b"\x00"


# ----------------------------------------------------------------------------------------------- vectorised path


def test_same_layout_records_are_decoded_without_the_record_by_record_path(monkeypatch):
    from containers.toolkit.codecs import _assemble

    def refuse(*_args, **_kwargs):
        raise AssertionError("record-by-record path used")

    monkeypatch.setattr(_assemble, "records_to_part", refuse)
    rng = np.random.default_rng(3)
    features = rng.random((300, 7)).astype(np.float32)
    labels = rng.integers(0, 1000, 300)  # 1- and 2-byte varints: two record lengths, interleaved
    batch = read_recordio(write_recordio(features, labels))
    np.testing.assert_array_equal(batch.features, features)
    np.testing.assert_array_equal(batch.labels, labels)
    # sparse rows with 5 non-zeros each but different columns: one record length, keys differ
    columns = np.stack([rng.choice(120, 5, replace=False) for _ in range(300)])
    sparse = sp.csr_matrix((rng.random(1500), columns.ravel(), np.arange(301) * 5), shape=(300, 400))
    np.testing.assert_array_equal(dense_of(read_recordio(write_recordio(sparse)).features), sparse.toarray())


row_kinds = st.sampled_from(["f32", "f64", "int", "sparse32", "sparse64"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(row_kinds, st.lists(st.integers(0, 300), min_size=3, max_size=3)), min_size=1, max_size=40))
def test_records_of_mixed_layouts_keep_their_order(rows):
    parts = []
    for kind, values in rows:
        row = np.array([values])
        if kind == "f32":
            parts.append(write_recordio(row.astype(np.float32), np.array([values[0]], np.float32)))
        elif kind == "f64":
            parts.append(write_recordio(row.astype(np.float64), np.array([values[0]], np.float32)))
        elif kind == "int":
            parts.append(write_recordio(row, np.array([values[0]], np.float32)))
        else:
            dtype = np.float32 if kind == "sparse32" else np.float64
            parts.append(write_recordio(sp.csr_matrix(row.astype(dtype)), np.array([values[0]], np.float32)))
    batch = read_recordio(b"".join(parts))
    expected = np.array([values for _, values in rows], dtype=np.float64)
    np.testing.assert_array_equal(dense_of(batch.features), expected)
    np.testing.assert_array_equal(batch.labels, expected[:, 0])
    streamed = list(iter_recordio_batches(io.BytesIO(b"".join(parts)), 3, chunk_bytes=64))
    np.testing.assert_array_equal(np.vstack([dense_of(b.features) for b in streamed]), expected)
