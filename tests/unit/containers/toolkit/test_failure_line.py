"""Known answers for the line a failed command's FailureReason quotes (containers.toolkit.errors.failure_line)."""

from __future__ import annotations

import pytest

from containers.toolkit.errors import failure_line


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                "Traceback (most recent call last):",
                '  File "x.py", line 1',
                "RuntimeError: boom",
                "2026-12-07 10:42:00,102 INFO botocore.configprovider: Found endpoint",
            ],
            "RuntimeError: boom",
        ),
        (
            [
                "botocore.exceptions.ClientError: An error occurred (ValidationException)",
                "26/12/07 10:00:00 INFO Spark",
            ],
            "botocore.exceptions.ClientError: An error occurred (ValidationException)",
        ),
        (["processed 3 rows", "asked to fail"], "asked to fail"),
        (
            ["asked to fail", "[2026-12-07 10:41:56,645 INFO runner] done", "sagemaker.config INFO - Not applying"],
            "asked to fail",
        ),
        (["KeyError", "26/12/07 10:00:01 WARN ShutdownHookManager: x"], "KeyError"),
        (
            ["26/12/07 10:00:01 ERROR Executor: lost", "26/12/07 10:00:02 INFO done"],
            "26/12/07 10:00:01 ERROR Executor: lost",
        ),
        (["2026-12-07 10:42:00,102 INFO a: only logs"], "2026-12-07 10:42:00,102 INFO a: only logs"),
        ([], "no error output"),
        (["", "   "], "no error output"),
    ],
)
def test_failure_line(lines, expected):
    assert failure_line(lines) == expected
