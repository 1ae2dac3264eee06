from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from containers.model_monitor.inputs.capture import CaptureTally, capture_tables, iter_records, record_rows
from containers.model_monitor.user_scripts import load_preprocessor
from tests.unit.containers.model_monitor.conftest import capture_line

BOTH = ("endpointInput", "endpointOutput")


def records(tmp_path, lines: list[str], start=None, end=None):
    folder = tmp_path / "ep" / "AllTraffic" / "2024" / "05" / "01" / "10"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "15-00-000-uuid.jsonl").write_text("\n".join(lines) + "\n")
    tally = CaptureTally()
    return list(iter_records(tmp_path, start, end, tally)), tally


@pytest.mark.parametrize("encoding", ["CSV", "BASE64"])
def test_csv_payload_output_columns_first(tmp_path, encoding) -> None:
    found, _ = records(tmp_path, [capture_line("69,0,153.7", "0.0254", "e1", encoding=encoding)])
    assert record_rows(found[0], BOTH) == [{"_c0": "0.0254", "_c1": "69", "_c2": "0", "_c3": "153.7"}]
    assert record_rows(found[0], ("endpointInput",)) == [{"_c0": "69", "_c1": "0", "_c2": "153.7"}]


def test_json_and_base64_json_payloads(tmp_path) -> None:
    lines = [
        capture_line({"a": 1, "b": "x"}, {"score": 0.5}, "e1"),
        capture_line({"instances": [{"a": 2}, {"a": 3}]}, {"predictions": [{"score": 0.1}, {"score": 0.2}]}, "e2"),
        capture_line({"a": 4.5, "nested": {"c": True}}, None, "e3", encoding="BASE64"),
    ]
    found, _ = records(tmp_path, lines)
    assert record_rows(found[0], BOTH) == [{"score": "0.5", "a": "1", "b": "x"}]
    assert record_rows(found[1], BOTH) == [{"score": "0.1", "a": "2"}, {"score": "0.2", "a": "3"}]
    assert record_rows(found[2], BOTH) == [{"a": "4.5", "nested.c": "true"}]


def test_multi_line_csv_and_positional_names(tmp_path) -> None:
    found, _ = records(tmp_path, [capture_line("1,2\n3,4", "0.1\n0.9", "e1")])
    rows = record_rows(found[0], BOTH, names=["label", "x", "y"])
    assert rows == [{"label": "0.1", "x": "1", "y": "2"}, {"label": "0.9", "x": "3", "y": "4"}]


def test_window_corrupt_lines_and_merge_key(tmp_path) -> None:
    lines = [
        capture_line("1", "0", "early", when="2024-05-01T09:59:59Z"),
        capture_line("2", "1", "inside", when="2024-05-01T10:00:00Z", inference_id="inf-1"),
        "{not json",
        '{"eventMetadata": {}}',
        capture_line("3", "1", "end", when="2024-05-01T11:00:00Z"),
    ]
    start = datetime(2024, 5, 1, 10, tzinfo=UTC)
    end = datetime(2024, 5, 1, 11, tzinfo=UTC)
    found, tally = records(tmp_path, lines, start, end)
    assert [r.event_id for r in found] == ["inside"]
    assert found[0].merge_key == "inf-1"
    assert (tally.records, tally.in_window, tally.corrupt) == (5, 1, 2)


def test_gzipped_capture_files(tmp_path) -> None:
    folder = tmp_path / "ep"
    folder.mkdir()
    with gzip.open(folder / "a.jsonl.gz", "wt") as handle:
        handle.write(capture_line("1,2", "0", "e1") + "\n")
    tally = CaptureTally()
    tables = list(capture_tables(iter_records(tmp_path, None, None, tally), lambda r: record_rows(r, BOTH), tally))
    assert tables[0].to_pylist() == [{"_c0": "0", "_c1": "1", "_c2": "2"}]


def test_undecodable_payload_is_counted_not_fatal(tmp_path) -> None:
    bad = capture_line("1", "0", "e1").replace('"data": "1", "encoding": "CSV"', '"data": "!!", "encoding": "BASE64"')
    bad = bad.replace('"observedContentType": "text/csv"', '"observedContentType": "application/json"', 1)
    found, tally = records(tmp_path, [bad, capture_line("5", "1", "e2")])
    tables = list(capture_tables(iter(found), lambda r: record_rows(r, BOTH), tally))
    assert tally.corrupt == 1
    assert tables[0].num_rows == 1


def test_preprocessor_both_styles(tmp_path) -> None:
    script = tmp_path / "pre.py"
    script.write_text(
        "import json\n"
        "def preprocess_handler(inference_record, logger):\n"
        "    if inference_record.event_metadata.event_id == 'drop':\n"
        "        return []\n"
        "    values = inference_record.event_data.endpointInput.data.split(',')\n"
        "    out = float(inference_record.endpoint_output.data)\n"
        "    return {str(i).zfill(20): v for i, v in enumerate(values)} | {'prediction': out, 'gone': None}\n"
    )
    found, tally = records(tmp_path / "cap", [capture_line("7,8", "0.5", "keep"), capture_line("1,2", "0.1", "drop")])
    to_rows = load_preprocessor(script)
    tables = list(capture_tables(iter(found), to_rows, tally))
    assert tables[0].to_pylist() == [
        {"00000000000000000000": "7", "00000000000000000001": "8", "gone": None, "prediction": "0.5"}
    ]
    assert tally.dropped == 1
