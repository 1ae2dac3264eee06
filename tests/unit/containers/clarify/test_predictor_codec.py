"""Request bodies for the model: the CSV the predictor sends, cell by cell, and how many requests it keeps in flight
(docs/clarify.md#analysis_configjson)."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from containers.clarify.config import PredictorConfig
from containers.clarify.model_access import predictor
from containers.clarify.model_access.predictor_codec import CsvRows, decode_response, encode_csv, encode_rows


def test_numeric_rows_are_shortest_round_trip_text_with_empty_missing_cells():
    frame = pd.DataFrame(
        {"a": [1.0, np.nan, -0.0, 1e-7, 1e22], "b": [1, 2, 3, 4, 5], "c": [True, False, True, True, False]}
    )
    assert encode_csv(frame) == b"1.0,1,True\n,2,False\n-0.0,3,True\n1e-07,4,True\n1e+22,5,False\n"


def test_cells_with_delimiters_quotes_or_newlines_are_quoted():
    frame = pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": ["y,z", 'q"', "a\nb"]})
    assert encode_csv(frame) == b'1.5,"y,z"\n2.5,"q"""\n3.5,"a\nb"\n'


def test_many_rows_parse_back_to_the_same_floats():
    values = np.random.default_rng(3).normal(size=(20000, 4)) * np.array([1.0, 1e-9, 1e12, 3.0])
    body = encode_rows(pd.DataFrame(values), PredictorConfig(endpoint_name="e"))
    parsed = np.array([[float(cell) for cell in line.split(",")] for line in body.decode().splitlines()])
    np.testing.assert_array_equal(parsed, values)


def test_categorical_columns_encode_as_their_values_missing_as_empty_cells():
    plain = pd.DataFrame({"a": [0.1, np.nan, 2.5, 0.1], "b": ["x", "y,z", "x", None], "c": [3, 1, 3, 2]})
    coded = pd.DataFrame({name: pd.Categorical(plain[name]) for name in plain.columns})
    assert encode_csv(coded) == encode_csv(plain) == b'0.1,x,3\n,"y,z",1\n2.5,x,3\n0.1,,2\n'


def test_row_ranges_of_one_encoder_join_to_the_whole_body():
    values = np.random.default_rng(5).normal(size=(1000, 3))
    frame = pd.DataFrame(
        {n: pd.Categorical.from_codes(np.arange(1000) % 7, categories=values[:7, i]) for i, n in enumerate("xyz")}
    )
    rows = CsvRows(frame)
    assert rows.encode(0, 333) + rows.encode(333, 999) + rows.encode(999, 1000) == encode_csv(frame)
    assert rows.encode(5, 5) == b""
    parsed = np.array([[float(c) for c in line.split(",")] for line in rows.encode(0, 1000).decode().splitlines()])
    np.testing.assert_array_equal(parsed, values[np.arange(1000) % 7])


class _CountingRuntime:
    """``invoke_endpoint`` answering each CSV row's first value, recording how many requests were in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.01)  # holds the request open so that others overlap it
        firsts = [line.split(",")[0] for line in request["Body"].decode().splitlines()]
        with self.lock:
            self.in_flight -= 1
        return {"Body": io.BytesIO("\n".join(firsts).encode())}


def test_concurrent_predict_calls_share_the_requests_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predictor, "MAX_ROWS_PER_REQUEST", 10)
    runtime = _CountingRuntime()
    model = predictor.EndpointModel("e", PredictorConfig(endpoint_name="e"), runtime=runtime)
    frames = [pd.DataFrame({"a": np.arange(200.0) + 1000 * call, "b": 1.5}) for call in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outputs = list(pool.map(model.predict, frames))
    for frame, output in zip(frames, outputs, strict=True):
        np.testing.assert_array_equal(output.matrix()[:, 0], frame["a"].to_numpy())
    assert 2 <= runtime.most <= predictor.PARALLEL_REQUESTS


def test_large_numeric_answers_parse_to_the_exact_floats_as_small_ones_do() -> None:
    scores = np.random.default_rng(7).random((3000, 2))
    scores[5, 1] = np.nan
    lines = [",".join("" if v != v else repr(v) for v in row) for row in scores.tolist()]
    config = PredictorConfig(endpoint_name="e")
    large = decode_response("\n".join(lines).encode(), config)  # over 16 KB: parsed by pyarrow
    np.testing.assert_array_equal(large.matrix(), scores)
    small = decode_response("\n".join(lines[:10]).encode(), config)
    np.testing.assert_array_equal(small.matrix(), scores[:10])


def test_large_answers_that_are_not_plain_numbers_keep_pandas_reading() -> None:
    config = PredictorConfig(endpoint_name="e")
    spaced = decode_response(("\n".join(f"{i}.5, 0.25" for i in range(3000))).encode(), config)
    np.testing.assert_array_equal(spaced.matrix()[:2], [[0.5, 0.25], [1.5, 0.25]])
    labels = decode_response(("\n".join("yes" if i % 2 else "0.5" for i in range(5000))).encode(), config)
    assert labels.scores is None and labels.labels is not None and labels.labels[:2].tolist() == ["0.5", "yes"]
