"""Training-side readers: CSV, LIBSVM, Parquet, recordIO files; channel discovery; streaming across files."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from containers.toolkit.codecs import (
    HIDDEN_FILE_MESSAGE,
    find_channel_files,
    iter_file_batches,
    read_files,
    write_recordio,
)
from containers.toolkit.codecs.tabular import sniff_delimiter
from containers.toolkit.errors import UserError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def dense(features) -> np.ndarray:
    return features.toarray() if sp.issparse(features) else np.asarray(features)


# ----------------------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    ("line", "expected"),
    [("1,2,3", ","), ("1;2;3", ";"), ("1\t2", "\t"), ("1|2|3", "|"), ("1.5", ","), ("-2.5", ","), ("10", ",")],
)
def test_sniff_delimiter(line, expected):
    assert sniff_delimiter(line) == expected


def test_csv_label_first_empty_cells_nan_blank_lines_skipped(tmp_path):
    path = write(tmp_path / "train.csv", "1,2,3\n0,,6\n\n1,7,8\n")
    batch = read_files([path], "text/csv")
    np.testing.assert_array_equal(batch.labels, [1, 0, 1])
    np.testing.assert_array_equal(batch.features, [[2, 3], [np.nan, 6], [7, 8]])


def test_csv_semicolon_delimiter_is_sniffed(tmp_path):
    path = write(tmp_path / "train.csv", "1;2.5;3\n0;4;5\n")
    np.testing.assert_array_equal(read_files([path], "csv").features, [[2.5, 3], [4, 5]])


def test_csv_without_label(tmp_path):
    path = write(tmp_path / "train.csv", "1,2\n3,4\n")
    for batch in (read_files([path], "text/csv", has_label=False), read_files([path], "text/csv;label_size=0")):
        assert batch.labels is None
        np.testing.assert_array_equal(batch.features, [[1, 2], [3, 4]])


def test_csv_label_size_other_than_0_or_1_is_rejected(tmp_path):
    path = write(tmp_path / "train.csv", "1,2\n")
    with pytest.raises(UserError, match="label_size=2"):
        read_files([path], "text/csv;label_size=2")


def test_csv_non_numeric_cell_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "train.csv", "1,2,3\n\n1,2,3\n0,abc,4\n")
    with pytest.raises(UserError, match=r"train\.csv, line 4: column 2 has the non-numeric value 'abc'"):
        read_files([path], "text/csv")


def test_csv_row_with_too_many_values_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.csv", "1,2,3\n4,5,6\n7,8,9,10\n")
    with pytest.raises(UserError, match=r"train\.csv, line 3: expected 3 values, found 4"):
        list(iter_file_batches([path], "text/csv", 1))


def test_csv_error_line_is_exact_beyond_the_first_chunk(tmp_path):
    path = write(tmp_path / "big.csv", "1,2\n" * 5000 + "1,x\n")
    with pytest.raises(UserError, match=r"line 5001: column 2"):
        list(iter_file_batches([path], "text/csv", 100))


def test_csv_files_with_different_widths_are_rejected(tmp_path):
    first = write(tmp_path / "a.csv", "1,2,3\n")
    second = write(tmp_path / "b.csv", "1,2\n")
    with pytest.raises(UserError, match=r"b\.csv has 1 feature columns but .*a\.csv has 2"):
        read_files([first, second], "text/csv")


def test_empty_csv_file_gives_no_rows(tmp_path):
    path = write(tmp_path / "empty.csv", "")
    assert list(iter_file_batches([path], "text/csv", 10)) == []
    assert read_files([path], "text/csv").n_rows == 0


# ----------------------------------------------------------------------------------------------- LIBSVM


def test_libsvm_indices_kept_as_written(tmp_path):
    path = write(tmp_path / "train.libsvm", "1 0:1.5 2:2\n0 1:-1\n\n1 # only a label\n")
    batch = read_files([path], "text/libsvm")
    assert sp.issparse(batch.features)
    np.testing.assert_array_equal(batch.labels, [1, 0, 1])
    np.testing.assert_array_equal(dense(batch.features), [[1.5, 0, 2], [0, -1, 0], [0, 0, 0]])


def test_libsvm_weights(tmp_path):
    path = write(tmp_path / "train.libsvm", "1:0.5 0:1\n0:2 1:1\n")
    batch = read_files([path], "libsvm")
    np.testing.assert_array_equal(batch.labels, [1, 0])
    np.testing.assert_array_equal(batch.weights, [0.5, 2])
    streamed = list(iter_file_batches([path, path], "libsvm", 3))
    np.testing.assert_array_equal(np.concatenate([b.weights for b in streamed]), [0.5, 2, 0.5, 2])
    with pytest.raises(UserError, match="line 2: only some rows have an instance weight"):
        read_files([write(tmp_path / "mixed.libsvm", "1:0.5 0:1\n0 1:1\n")], "libsvm")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 0:1\n0 3\n", r"line 2: token '3' is not index:value"),
        ("1 0:1\nx 1:1\n", r"line 2: could not convert"),
        ("1 0:1\n\n0 -1:2\n", r"line 3: feature index -1 is out of range"),
        ("1 0:1\n0 1:abc\n", r"line 2: could not convert"),
    ],
)
def test_libsvm_malformed_line_names_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "bad.libsvm", text)
    with pytest.raises(UserError, match=r"bad\.libsvm, " + message):
        read_files([path], "text/x-libsvm")


# ----------------------------------------------------------------------------------------------- Parquet


def test_parquet_column_zero_is_label_nulls_are_nan(tmp_path):
    path = tmp_path / "train.parquet"
    table = pa.table({"y": [1, 0, 1], "a": [0.5, None, 2.0], "b": pa.array([1, 2, 3], pa.int32())})
    pq.write_table(table, path, row_group_size=2)
    batches = list(iter_file_batches([path], "application/x-parquet", 2))
    assert [b.n_rows for b in batches] == [2, 1]
    batch = read_files([path], "parquet")
    np.testing.assert_array_equal(batch.labels, [1, 0, 1])
    np.testing.assert_array_equal(batch.features, [[0.5, 1], [np.nan, 2], [2, 3]])


def test_parquet_non_numeric_column_is_named(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"y": [1], "city": ["Oslo"]}), path)
    with pytest.raises(UserError, match=r"train\.parquet: column 'city' has non-numeric type string"):
        read_files([path], "parquet")


def test_not_a_parquet_file(tmp_path):
    path = write(tmp_path / "train.parquet", "1,2,3\n")
    with pytest.raises(UserError, match="Could not read Parquet data"):
        read_files([path], "parquet")


# ----------------------------------------------------------------------------------------------- streaming


def make_channel(tmp_path: Path, content_type: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    features = np.round(rng.random((23, 4)), 3)
    features[features < 0.3] = 0
    labels = (rng.random(23) > 0.5).astype(np.float64)
    paths = []
    for number, (start, stop) in enumerate([(0, 5), (5, 6), (6, 17), (17, 23)]):
        x, y = features[start:stop], labels[start:stop]
        if content_type == "csv":
            text = "".join(
                ",".join(str(float(v)) for v in [label, *row]) + "\n" for label, row in zip(y, x, strict=True)
            )
            paths.append(write(tmp_path / f"part-{number}.csv", text))
        elif content_type == "libsvm":
            lines = [
                f"{float(label)} " + " ".join(f"{i}:{float(v)}" for i, v in enumerate(row) if v) + "\n"
                for label, row in zip(y, x, strict=True)
            ]
            paths.append(write(tmp_path / f"part-{number}.libsvm", "".join(lines)))
        elif content_type == "parquet":
            path = tmp_path / f"part-{number}.parquet"
            pq.write_table(pa.table({"label": y, **{f"f{i}": x[:, i] for i in range(4)}}), path)
            paths.append(path)
        else:
            path = tmp_path / f"part-{number}.rec"
            path.write_bytes(write_recordio(x if number % 2 else sp.csr_matrix(x), y))
            paths.append(path)
    return paths, features, labels


@pytest.mark.parametrize("content_type", ["csv", "libsvm", "parquet", "recordio-protobuf"])
@pytest.mark.parametrize("batch_rows", [1, 4, 7, 100])
def test_streamed_batches_across_files_equal_whole_read(tmp_path, content_type, batch_rows):
    paths, features, labels = make_channel(tmp_path, content_type)
    batches = list(iter_file_batches(paths, content_type, batch_rows))
    assert [b.n_rows for b in batches[:-1]] == [batch_rows] * (len(batches) - 1)
    assert sum(b.n_rows for b in batches) == 23
    whole = read_files(paths, content_type)
    streamed = np.vstack([np.pad(dense(b.features), ((0, 0), (0, 4 - b.n_columns))) for b in batches])
    np.testing.assert_array_equal(streamed, features)
    np.testing.assert_array_equal(dense(whole.features), features)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), labels)
    np.testing.assert_array_equal(whole.labels, labels)


def test_unknown_training_content_type(tmp_path):
    with pytest.raises(UserError, match="text/plain is not an accepted ContentType: csv, libsvm"):
        list(iter_file_batches([tmp_path / "x"], "text/plain", 10))


def test_recordio_without_label_request_drops_labels(tmp_path):
    path = tmp_path / "a.rec"
    path.write_bytes(write_recordio(np.ones((2, 2), np.float32), np.array([1.0, 0.0], np.float32)))
    assert read_files([path], "application/x-recordio-protobuf", has_label=False).labels is None


# ----------------------------------------------------------------------------------------------- channel files


def test_find_channel_files_sorted_recursive_skips_underscore(tmp_path, caplog):
    for name in [
        "b.csv",
        "a.csv",
        "sub/c.csv",
        "sub/deeper/d.csv",
        "1/2/3/e.csv",
        "1/2/3/4/too-deep.csv",
        "_SUCCESS",
        "_tmp/x.csv",
    ]:
        write(tmp_path / name, "1\n")
    with caplog.at_level(logging.WARNING):
        found = find_channel_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "1/2/3/e.csv",
        "a.csv",
        "b.csv",
        "sub/c.csv",
        "sub/deeper/d.csv",
    ]
    assert "deeper than 3 levels" in caplog.text


@pytest.mark.parametrize("name", [".hidden.csv", "sub/.DS_Store", ".git/x"])
def test_hidden_file_anywhere_is_a_user_error(tmp_path, name):
    write(tmp_path / "a.csv", "1\n")
    write(tmp_path / name, "1\n")
    with pytest.raises(UserError, match=re.escape(HIDDEN_FILE_MESSAGE)):
        find_channel_files(tmp_path)


def test_csv_fallback_after_arrow_blocks_delivers_every_row_once(tmp_path, monkeypatch):
    from containers.toolkit.codecs import tabular

    monkeypatch.setattr(tabular, "CSV_BLOCK_BYTES", 64)  # many pyarrow blocks before the line it refuses
    good = "".join(f"{n},{n + 1}\n" for n in range(40))
    path = write(tmp_path / "train.csv", good + " 40, 41\n" + "42,43\n")  # spaces: pyarrow stops, pandas reads them
    rows = np.concatenate([batch.features for batch in iter_file_batches([path], "text/csv", 7, has_label=False)])
    np.testing.assert_array_equal(rows[:, 0], [*range(40), 40, 42])


def test_csv_error_line_is_exact_after_arrow_blocks(tmp_path, monkeypatch):
    from containers.toolkit.codecs import tabular

    monkeypatch.setattr(tabular, "CSV_BLOCK_BYTES", 64)
    path = write(tmp_path / "train.csv", "1,2\n" * 50 + "\n" + "3,oops\n")
    with pytest.raises(UserError, match=r"train\.csv, line 52: column 2 has the non-numeric value 'oops'"):
        list(iter_file_batches([path], "text/csv", 10))


def test_csv_all_empty_rows_are_skipped_like_blank_lines(tmp_path):
    path = write(tmp_path / "train.csv", "1,2\n,\n3,4\n")
    np.testing.assert_array_equal(read_files([path], "text/csv", has_label=False).features, [[1, 2], [3, 4]])
