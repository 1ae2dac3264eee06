"""Serving codecs: media types, Accept negotiation, request decoding, response encoding."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from containers.toolkit.codecs import (
    CSV,
    JSON,
    JSONLINES,
    LIBSVM,
    PARQUET,
    RECORDIO_PROTOBUF,
    decode_label_records,
    decode_request,
    encode_rows,
    negotiate_accept,
    parse_media_type,
    write_recordio,
)
from containers.toolkit.codecs.tabular import iter_libsvm_batches
from containers.toolkit.errors import BadRequestError, NotAcceptableError, UnsupportedMediaTypeError

SUPPORTED = [JSON, JSONLINES, CSV, RECORDIO_PROTOBUF]


def dense(features) -> np.ndarray:
    return features.toarray() if sp.issparse(features) else np.asarray(features)


# ----------------------------------------------------------------------------------------------- media types


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("CSV", CSV),
        ("text/CSV", CSV),
        ("libsvm", LIBSVM),
        ("text/x-libsvm", LIBSVM),
        ("Parquet", PARQUET),
        ("recordio-protobuf", RECORDIO_PROTOBUF),
        ("application/x-jsonlines", JSONLINES),
        ("application/jsonl", JSONLINES),
        ("application/json; charset=utf-8", JSON),
        ("image/png", "image/png"),
    ],
)
def test_parse_media_type_aliases(value, canonical):
    assert parse_media_type(value).type == canonical


def test_parse_media_type_parameters():
    media = parse_media_type('text/csv; Label_Size=1; charset="utf-8"')
    assert dict(media.params) == {"label_size": "1", "charset": "utf-8"}
    assert str(media) == "text/csv;label_size=1;charset=utf-8"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("text/csv", CSV),
        ("application/x-recordio-protobuf", RECORDIO_PROTOBUF),
        ("image/png, text/csv", CSV),
        ("text/csv;q=0.5, application/jsonlines", JSONLINES),
        ("text/csv;q=0.9, application/jsonlines;q=0.1", CSV),
        ("text/*", CSV),
        ("application/*", JSON),
        ("image/png, */*;q=0.1", JSON),
        ("application/x-jsonlines", JSONLINES),
    ],
)
def test_negotiate_accept(accept, expected):
    assert negotiate_accept(accept, SUPPORTED, JSON) == expected


@pytest.mark.parametrize("accept", ["image/png", "text/csv;q=0", "text/html, image/*"])
def test_negotiate_accept_refuses_naming_the_supported_types(accept):
    with pytest.raises(NotAcceptableError, match=r"not supported.*application/json, application/jsonlines, text/csv"):
        negotiate_accept(accept, SUPPORTED, JSON)
    assert NotAcceptableError.status == 406


# ----------------------------------------------------------------------------------------------- CSV / LIBSVM


def test_decode_csv_one_row():
    batch = decode_request(b"1.5,2,3\n", "text/csv")
    assert batch.labels is None
    assert batch.features.dtype == np.float64
    np.testing.assert_array_equal(batch.features, [[1.5, 2, 3]])


def test_decode_csv_many_rows_empty_cells_and_sniffed_delimiter():
    np.testing.assert_array_equal(decode_request(b"1,,3\n4,5,6", "csv").features, [[1, np.nan, 3], [4, 5, 6]])
    np.testing.assert_array_equal(decode_request(b"1\t2\n3\t4\n", "text/csv").features, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(decode_request(b"7.5\n-1\n", "text/csv").features, [[7.5], [-1]])


def test_decode_csv_label_size_parameter_is_accepted():
    np.testing.assert_array_equal(decode_request(b"1,2", "text/csv; label_size=0").features, [[1, 2]])


def test_decode_csv_errors():
    with pytest.raises(UnsupportedMediaTypeError, match="Loading csv data failed"):
        decode_request(b"1,abc", "text/csv")
    with pytest.raises(BadRequestError, match="line 2 has 2 values; line 1 has 3"):
        decode_request(b"1,2,3\n4,5", "text/csv")
    with pytest.raises(BadRequestError, match="empty"):
        decode_request(b"  \n", "text/csv")
    with pytest.raises(UnsupportedMediaTypeError, match="not UTF-8"):
        decode_request(b"\xff\xfe", "text/csv")


def test_decode_libsvm_ignores_label_and_keeps_one_based_indices_as_written():
    # Column 0 stays empty: the model trained on these rows has it unused too (AWS's container reads both sides so).
    batch = decode_request(b"1 1:0.5 3:2\n0 2:1\n", "text/libsvm")
    assert sp.issparse(batch.features)
    np.testing.assert_array_equal(dense(batch.features), [[0, 0.5, 0, 2], [0, 0, 1, 0]])


def test_decode_libsvm_reads_the_same_matrix_as_the_training_reader(tmp_path):
    # The abalone example: 1-based indices, labels first. Serving must see every feature in training's column.
    lines = b"15 1:1 2:0.455 3:0.365 4:0.095 8:0.15\n7 1:2 2:0.35 5:0.2255 6:0.0995 7:0.0485\n9 3:0.53 8:0.21\n"
    path = tmp_path / "train.libsvm"
    path.write_bytes(lines)
    (training,) = iter_libsvm_batches(path, batch_rows=10)
    served = decode_request(lines, "text/libsvm").features
    assert served.shape == training.features.shape
    np.testing.assert_array_equal(dense(served), dense(training.features))


def test_decode_libsvm_keeps_zero_based_indices():
    batch = decode_request(b"0:0.5 2:2\n", "libsvm")
    np.testing.assert_array_equal(dense(batch.features), [[0.5, 0, 2]])


def test_decode_libsvm_garbage():
    with pytest.raises(UnsupportedMediaTypeError, match="Loading libsvm data failed"):
        decode_request(b"1 a:b\n", "text/x-libsvm")


# ----------------------------------------------------------------------------------------------- recordIO


def test_decode_recordio_dense_and_sparse_ignore_labels():
    body = write_recordio(np.array([[1, 2], [3, 4]], dtype=np.float32), np.array([1, 0], np.float32))
    batch = decode_request(body, "application/x-recordio-protobuf")
    assert batch.labels is None
    np.testing.assert_array_equal(batch.features, [[1, 2], [3, 4]])
    sparse = decode_request(write_recordio(sp.csr_matrix(np.array([[0, 5.0]]))), "recordio-protobuf")
    np.testing.assert_array_equal(dense(sparse.features), [[0, 5]])


def test_decode_recordio_bad_body_is_400():
    with pytest.raises(BadRequestError, match="Invalid RecordIO magic"):
        decode_request(b"\x00" * 16, RECORDIO_PROTOBUF)


# ----------------------------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    "document",
    [
        {"instances": [{"features": [1.5, 16.0]}, {"features": [2, 3]}]},
        {"instances": [{"data": {"features": {"values": [1.5, 16.0]}}}, {"data": {"features": {"values": [2, 3]}}}]},
        [[1.5, 16.0], [2, 3]],
        {"instances": [[1.5, 16.0], [2, 3]]},
    ],
)
def test_decode_json_dense_forms(document):
    batch = decode_request(json.dumps(document).encode(), "application/json")
    np.testing.assert_array_equal(batch.features, [[1.5, 16], [2, 3]])


def test_decode_json_bare_row():
    np.testing.assert_array_equal(decode_request(b"[1, 2, 3]", JSON).features, [[1, 2, 3]])


def test_decode_json_sparse_and_mixed():
    document = {
        "instances": [
            {"data": {"features": {"keys": [26, 182], "shape": [200], "values": [1, 2]}}},
            {"features": [0.0] * 199 + [9.0]},
        ]
    }
    batch = decode_request(json.dumps(document).encode(), JSON)
    assert sp.issparse(batch.features)
    assert batch.features.shape == (2, 200)
    assert batch.features[0, 26] == 1 and batch.features[0, 182] == 2 and batch.features[1, 199] == 9


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"{not json", UnsupportedMediaTypeError, "Loading json data failed"),
        (b'{"rows": []}', BadRequestError, "instances"),
        (b'{"instances": []}', BadRequestError, "no instances"),
        (b'{"instances": [{"x": 1}]}', BadRequestError, '"features"'),
        (b'{"instances": [[1, 2], [3]]}', BadRequestError, "different numbers of features"),
        (b'{"instances": [[1, "a"]]}', BadRequestError, "rows of numbers"),
        (b'{"instances": [{"features": {"keys": [5], "shape": [3], "values": [1]}}]}', BadRequestError, "out of range"),
    ],
)
def test_decode_json_errors(body, error, message):
    with pytest.raises(error, match=message):
        decode_request(body, JSON)


def test_decode_jsonlines():
    body = b'{"features": [1, 2]}\n\n{"data": {"features": {"values": [3, 4]}}}\n[5, 6]\n'
    np.testing.assert_array_equal(decode_request(body, "application/jsonlines").features, [[1, 2], [3, 4], [5, 6]])
    with pytest.raises(UnsupportedMediaTypeError, match="jsonlines"):
        decode_request(b'{"features": [1]}\n{oops', JSONLINES)


@pytest.mark.parametrize("content_type", ["application/x-parquet", "image/png", ""])
def test_unsupported_request_content_type(content_type):
    with pytest.raises(UnsupportedMediaTypeError, match=f"Content-type {content_type} is not supported."):
        decode_request(b"1", content_type)


# ----------------------------------------------------------------------------------------------- responses

KMEANS_ROWS: list[dict[str, Any]] = [
    {"closest_cluster": 1.0, "distance_to_cluster": 3.0},
    {"closest_cluster": np.float32(0.0), "distance_to_cluster": np.float32(0.1)},
]


def test_encode_json():
    body = encode_rows(KMEANS_ROWS, "application/json", json_root="predictions")
    assert json.loads(body) == {
        "predictions": [
            {"closest_cluster": 1.0, "distance_to_cluster": 3.0},
            {"closest_cluster": 0.0, "distance_to_cluster": 0.1},
        ]
    }


def test_encode_jsonlines_and_lists():
    rows: list[dict[str, Any]] = [{"projection": np.array([1.0, 2.5], dtype=np.float32)}, {"projection": [3, 4]}]
    body = encode_rows(rows, JSONLINES, json_root="projections")
    assert body == b'{"projection": [1.0, 2.5]}\n{"projection": [3.0, 4.0]}\n'


def test_encode_csv_values_in_key_order_lists_flattened():
    assert encode_rows(KMEANS_ROWS, "text/csv", json_root="predictions") == b"1.0,3.0\n0.0,0.1\n"
    assert encode_rows([{"a": [1, 2], "b": 3.5}], CSV, json_root="x") == b"1.0,2.0,3.5\n"


def test_encode_recordio():
    body = encode_rows(KMEANS_ROWS, RECORDIO_PROTOBUF, json_root="predictions")
    decoded = decode_label_records(body)
    assert decoded[0] == {"closest_cluster": [1.0], "distance_to_cluster": [3.0]}
    assert decoded[1]["distance_to_cluster"] == [pytest.approx(0.1)]


def test_encode_unknown_accept():
    with pytest.raises(UnsupportedMediaTypeError):
        encode_rows(KMEANS_ROWS, "image/png", json_root="predictions")


def test_decode_large_csv_body_same_as_small_path():
    rows = np.round(np.random.default_rng(0).random((3000, 4)), 4)
    body = "\n".join(",".join(str(v) for v in row) for row in rows).encode()
    assert len(body) > 16384
    np.testing.assert_array_equal(decode_request(body, CSV).features, rows)
    with_empty = body + b"\n1,,2,3"
    np.testing.assert_array_equal(decode_request(with_empty, CSV).features[-1], [1, np.nan, 2, 3])
    with pytest.raises(BadRequestError, match="line 3001 has 3 values"):
        decode_request(body + b"\n1,2,3", CSV)
    with pytest.raises(UnsupportedMediaTypeError, match="Loading csv data failed"):
        decode_request(body + b"\n1,2,3,x", CSV)


def _libsvm_body(rows: np.ndarray, first_index: int) -> bytes:
    lines = []
    for number, row in enumerate(rows):
        tokens = [f"{first_index + j}:{float(v)!r}" for j, v in enumerate(row) if v != 0]
        lines.append(" ".join([str(number % 2), *tokens]))
    return "\n".join(lines).encode()


@pytest.mark.parametrize("first_index", [0, 1])
def test_decode_large_libsvm_body_same_matrix_as_written_never_shifted(first_index):
    rows = np.random.default_rng(1).normal(size=(1500, 6))
    rows[rows < -1] = 0.0  # some features absent
    rows[7] = 0.0  # a row of only its label
    body = _libsvm_body(rows, first_index)
    assert len(body) > 16384
    features = decode_request(body, LIBSVM).features
    assert features.shape == (1500, 6 + first_index)
    np.testing.assert_array_equal(dense(features)[:, first_index:], rows)
    if first_index:
        assert not dense(features)[:, 0].any()


def test_decode_large_libsvm_blank_lines_comments_and_crlf_as_the_small_path():
    rows = np.round(np.random.default_rng(2).random((1200, 4)), 5)
    body = _libsvm_body(rows, 1)
    expected = dense(decode_request(body, LIBSVM).features)
    variants = [body.replace(b"\n", b"\r\n"), b"\n\n" + body + b"\n  \n", body + b"\n1 2:0.5 # a comment"]
    np.testing.assert_array_equal(dense(decode_request(variants[0], LIBSVM).features), expected)
    np.testing.assert_array_equal(dense(decode_request(variants[1], LIBSVM).features), expected)
    with_comment = dense(decode_request(variants[2], LIBSVM).features)
    np.testing.assert_array_equal(with_comment[:-1], expected)
    np.testing.assert_array_equal(with_comment[-1], [0, 0, 0.5, 0, 0])


@pytest.mark.parametrize(
    ("tail", "error", "message"),
    [
        (b"\n1 3:abc", UnsupportedMediaTypeError, "Loading libsvm data failed"),
        (b"\n1 qid:3 2:1", UnsupportedMediaTypeError, "Loading libsvm data failed"),
        (b"\n1 2", UnsupportedMediaTypeError, "Loading libsvm data failed"),
        (b"\n1 -2:1.5", BadRequestError, "index -2 is negative"),
    ],
)
def test_decode_large_libsvm_errors_as_the_small_path(tail, error, message):
    body = _libsvm_body(np.ones((1500, 3)), 1)
    with pytest.raises(error, match=message):
        decode_request(body + tail, LIBSVM)
    with pytest.raises(error, match=message):
        decode_request(b"1 1:1" + tail, LIBSVM)


def test_decode_large_csv_refuses_what_float_refuses_and_keeps_lone_cr_rows():
    rows = np.round(np.random.default_rng(3).random((3000, 3)), 4)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()
    for cell in (b'"1.5"', b"NA", b"null", b"0x10"):
        with pytest.raises(UnsupportedMediaTypeError, match="Loading csv data failed"):
            decode_request(body + b"\n1," + cell + b",2", CSV)
    crlf = decode_request(body.replace(b"\n", b"\r\n"), CSV).features
    np.testing.assert_array_equal(crlf, rows)
    with pytest.raises(UnsupportedMediaTypeError, match="Loading csv data failed"):
        decode_request(body + b"\n1,2,3\r4,5,6", CSV)  # "\r" is not a line break in a request body
    with pytest.raises(UnsupportedMediaTypeError, match="Loading csv data failed"):
        decode_request(b"\xef\xbb\xbf" + body, CSV)  # as the line-by-line path answers a byte-order mark
