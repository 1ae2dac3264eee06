"""The suite's run order (tests/file_order.py): longest files first, a file's tests together and in their order."""

from __future__ import annotations

import json

from tests.file_order import FILE_SECONDS, known_file_seconds, longest_files_first

COLLECTED = [
    "tests/a.py::test_1",
    "tests/a.py::test_2",
    "tests/b.py::test_1",
    "tests/c.py::test_1[x]",
    "tests/c.py::test_1[y]",
    "tests/d.py::test_1",
]


def _ordered(seconds: dict[str, float]) -> list[str]:
    return [COLLECTED[position] for position in longest_files_first(COLLECTED, seconds)]


def test_the_longest_known_files_run_first_and_the_others_keep_their_place():
    assert _ordered({"tests/c.py": 90.0, "tests/b.py": 30.5}) == [
        "tests/c.py::test_1[x]",
        "tests/c.py::test_1[y]",
        "tests/b.py::test_1",
        "tests/a.py::test_1",
        "tests/a.py::test_2",
        "tests/d.py::test_1",
    ]


def test_without_known_seconds_the_collection_order_is_kept():
    assert _ordered({}) == COLLECTED


def test_the_shipped_seconds_name_test_files_that_exist(tmp_path):
    seconds = known_file_seconds()
    assert seconds and all(value > 0 for value in seconds.values())
    root = FILE_SECONDS.parents[1]
    assert [name for name in seconds if not (root / name).is_file()] == []  # a renamed file would lose its place
    (tmp_path / "s.json").write_text(json.dumps({"tests/x.py": 3}))
    assert known_file_seconds(tmp_path / "s.json") == {"tests/x.py": 3.0}
    assert known_file_seconds(tmp_path / "missing.json") == {}
