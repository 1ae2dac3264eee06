"""Batch transform's JSONPath subset (DG examples, inclusive slice ends), splitting, packing and join/filter."""

import pytest

from infra.control_plane.core.jsonpath import JsonPathError, select
from infra.control_plane.transform.transform_records import (
    DataProcessing,
    RecordError,
    frame_recordio,
    pack_requests,
    request_body,
    split_records,
)

ROW = ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", ROW),
        ("$[1:]", ROW[1:]),  # DG: exclude the first column
        ("$[1:4]", ["c2", "c3", "c4", "c5"]),  # DG: second through fifth columns (inclusive end)
        ("$[:5]", ROW[:6]),  # DG: first through sixth
        ("$[0,-1]", ["c1", "c7"]),  # DG: id column plus prediction
        ("$[-1]", "c7"),
        ("$[*]", ROW),
        ("$[2]", "c3"),
    ],
)
def test_array_paths_follow_the_dg_examples(path, expected):
    assert select(path, ROW) == expected


def test_object_paths():
    record = {"id": 1, "features": [1, 2], "SageMakerOutput": {"label": 0}}
    assert select("$.features", record) == [1, 2]
    assert select("$['id','SageMakerOutput']", record) == {"id": 1, "SageMakerOutput": {"label": 0}}
    assert select("$.SageMakerOutput.label", record) == 0
    assert select("$.*", {"a": 1, "b": 2}) == [1, 2]


@pytest.mark.parametrize("path", ["$[7]", "$.missing", "x", "$[a]", "$..deep"])
def test_bad_paths_and_out_of_range_indices_raise(path):
    with pytest.raises(JsonPathError):
        select(path, ROW if "[" in path else {"a": 1})


def test_line_split_keeps_newlines_and_drops_blank_lines():
    assert split_records(b"1,2\n\n3,4", "Line") == [b"1,2\n", b"3,4\n"]
    assert split_records(b"whole", "None") == [b"whole"]


def test_recordio_split_and_reframing_for_multi_record():
    payloads = [b"abc", b"defgh"]
    stream = b"".join(frame_recordio(p) for p in payloads)
    assert split_records(stream, "RecordIO") == payloads
    assert len(frame_recordio(b"abc")) == 12  # 8-byte header + 3 bytes + 1 byte padding
    assert request_body(payloads, [0, 1], "RecordIO", "MultiRecord") == stream
    assert request_body(payloads, [1], "RecordIO", "SingleRecord") == b"defgh"


def test_multi_record_packs_greedily_by_byte_length():
    records = [b"a" * 4, b"b" * 4, b"c" * 4, b"d" * 9]
    assert pack_requests(records, "MultiRecord", "Line", 10) == [[0, 1], [2], [3]]
    assert pack_requests(records[:3], "SingleRecord", "Line", 10) == [[0], [1], [2]]
    with pytest.raises(RecordError, match="larger than"):
        pack_requests([b"x" * 11], "MultiRecord", "Line", 10)


def test_csv_filter_join_and_output_filter():
    processing = DataProcessing("$[1:]", True, "$[0,-1]", "text/csv", "text/csv")
    assert processing.filter_input(b"id7,1,2\n") == b"1,2\n"
    assert processing.finish(b"id7,1,2\n", b"0.25\n") == b"id7,0.25"


def test_json_join_adds_sagemaker_output_or_wraps_non_objects():
    processing = DataProcessing("$.features", True, "$", "application/jsonlines", "application/jsonlines")
    assert processing.filter_input(b'{"id":1,"features":[1,2]}\n') == b"[1,2]\n"
    joined = processing.finish(b'{"id":1,"features":[1,2]}', b'{"score":0.5}')
    assert joined == b'{"id":1,"features":[1,2],"SageMakerOutput":{"score":0.5}}'
    assert processing.finish(b"3", b"0.5") == b'{"SageMakerInput":3,"SageMakerOutput":0.5}'


def test_csv_data_processing_requires_line_split_and_assembly():
    processing = DataProcessing("$[1:]", False, "$", "text/csv", "text/csv")
    with pytest.raises(RecordError, match="SplitType Line"):
        processing.check("None", "Line")
    processing.check("Line", "Line")
    with pytest.raises(RecordError, match="ContentType"):
        DataProcessing("$[1:]", content_type="image/png").check("None", "None")
