"""The credit-risk feature step's ``submit_py_files`` zip: byte-for-byte reproducible, so the step's code hash (in
its S3 code location, hence in its cache key) only changes when the code does. The step itself is checked end to
end on the pull-request workflow's pipeline run (``tests/ci/credit_risk_run_checks.py``; building the definition
costs seconds of SDK config validation, so it is not repeated here).
"""

import io
import os
import zipfile

import pytest
from sagemaker.workflow.utilities import hash_files_or_dirs

from pipelines.credit_risk import packaging
from pipelines.credit_risk.pipeline import FEATURE_JOB


def test_py_files_zip_is_byte_for_byte_reproducible(tmp_path):
    first = packaging.zip_bytes(packaging.SPARK_JOBS)
    assert packaging.zip_bytes(packaging.SPARK_JOBS) == first
    target = packaging.build_py_files(target_dir=tmp_path)
    stamp = target.stat().st_mtime_ns
    assert packaging.build_py_files(target_dir=tmp_path) == target and target.stat().st_mtime_ns == stamp
    with zipfile.ZipFile(target) as archive:
        entries = archive.infolist()
    names = [entry.filename for entry in entries]
    assert names == sorted(names) and "spark_jobs/features/credit.py" in names
    assert "spark_jobs/features/processing.py" in names and not any("__pycache__" in n for n in names)
    assert {entry.date_time for entry in entries} == {(1980, 1, 1, 0, 0, 0)}
    # what the SDK hashes for the step's code location: the same on every build
    code_hash = hash_files_or_dirs([str(FEATURE_JOB), str(target)])
    assert hash_files_or_dirs([str(FEATURE_JOB), str(packaging.build_py_files(target_dir=tmp_path))]) == code_hash


def test_zip_of_an_empty_package_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Python files"):
        packaging.zip_bytes(tmp_path)


def test_zip_ignores_file_times_and_order_but_not_content(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "mod.py").write_text("X = 1\n")
    (package / "notes.txt").write_text("not shipped")
    first = packaging.zip_bytes(package)
    os.utime(package / "sub" / "mod.py", (1_900_000_000, 1_900_000_000))
    assert packaging.zip_bytes(package) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == ["pkg/__init__.py", "pkg/sub/mod.py"]
    (package / "sub" / "mod.py").write_text("X = 2\n")
    assert packaging.zip_bytes(package) != first
