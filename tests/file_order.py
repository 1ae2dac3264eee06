"""The longest test files first, so that under pytest-xdist none of them starts last and runs alone at the end.

``make test`` hands whole files to its workers (``--dist loadfile --no-loadscope-reorder``) in collection order.
pytest-xdist's default order, files with the most tests first, puts the files of one or two long end-to-end tests
(the workflow test, the EMR cluster, a stereo DeepRacer job) at the tail, where the run waits on whichever started
last (docs/ci.md#scheduling-the-suite). Here the collected items are sorted by
their file's seconds in ``file_seconds.json`` (a past run's wall time per file), longest first; a file it does not
know keeps its place after them, and the tests of a file keep their order. The sort is deterministic, so every
worker collects the same list.

``--record-file-seconds=PATH`` writes this run's seconds per file (setup, call and teardown of its tests) to PATH,
the way ``file_seconds.json`` is refreshed after the suite changed a lot.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import pytest

logger = logging.getLogger(__name__)

FILE_SECONDS = Path(__file__).with_name("file_seconds.json")
# files faster than this are left in collection order: their place does not change the run's tail
RECORDED_MINIMUM_SECONDS = 5.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-file-seconds",
        metavar="PATH",
        default=None,
        help="write each test file's seconds in this run to PATH (the format of tests/file_seconds.json)",
    )


def test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def known_file_seconds(path: Path = FILE_SECONDS) -> dict[str, float]:
    if not path.exists():
        return {}
    return {str(name): float(seconds) for name, seconds in json.loads(path.read_text()).items()}


def longest_files_first(nodeids: list[str], seconds: dict[str, float]) -> list[int]:
    """The positions of ``nodeids`` in run order: by their file's known seconds, longest first, then as collected."""
    first_seen: dict[str, int] = {}
    for position, nodeid in enumerate(nodeids):
        first_seen.setdefault(test_file(nodeid), position)

    def rank(position: int) -> tuple[float, int, int]:
        name = test_file(nodeids[position])
        return -seconds.get(name, 0.0), first_seen[name], position

    return sorted(range(len(nodeids)), key=rank)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    order = longest_files_first([item.nodeid for item in items], known_file_seconds())
    items[:] = [items[position] for position in order]


class _FileSecondsRecorder:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._seconds[test_file(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        kept = {name: round(s, 1) for name, s in self._seconds.items() if s >= RECORDED_MINIMUM_SECONDS}
        ordered = dict(sorted(kept.items(), key=lambda entry: (-entry[1], entry[0])))
        self._path.write_text(json.dumps(ordered, indent=1) + "\n")
        logger.info("wrote the seconds of %d test files to %s", len(ordered), self._path)


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("--record-file-seconds")
    if target and not hasattr(config, "workerinput"):  # the controller gets every worker's reports
        config.pluginmanager.register(_FileSecondsRecorder(Path(target)), "file-seconds-recorder")
