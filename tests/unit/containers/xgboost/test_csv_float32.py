"""The CSV fast path: float32 rows identical to the codec path after XGBoost's own float32 conversion, and the codec
path (with its error messages) for anything the fast path does not take."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from containers.toolkit.codecs import read_files
from containers.toolkit.errors import UserError
from containers.xgboost import data
from containers.xgboost.csv_float32 import read_csv_float32


def _channel(tmp_path: Path, files: dict[str, str]) -> data.ChannelData:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    paths = tuple(sorted(tmp_path / name for name in files))
    return data.ChannelData(data.TRAIN, tmp_path, "text/csv", paths)


def test_matches_the_codec_path_as_float32(tmp_path):
    rng = np.random.default_rng(3)
    rows = np.column_stack([rng.integers(0, 2, 300), rng.normal(size=(300, 4)) * 1e3]).astype(np.float64)
    text = "\n".join(",".join(f"{v:.9g}" for v in row) for row in rows)
    lines = text.splitlines()
    lines.insert(7, ",,,,")  # a row of empty cells is skipped, as the codecs skip it
    lines[11] = lines[11].split(",", 1)[0] + ",,1.5,,2"  # empty cells are missing values
    halves = {"a.csv": "\n".join(lines[:150]) + "\n", "b.csv": "\n".join(lines[150:]) + "\n"}
    channel = _channel(tmp_path, halves)

    fast = read_csv_float32(channel.files)
    slow = read_files(list(channel.files), "text/csv")

    assert fast is not None and fast.features.dtype == np.float32
    assert fast.labels is not None and slow.labels is not None
    np.testing.assert_array_equal(fast.features, slow.features.astype(np.float32))
    np.testing.assert_array_equal(fast.labels, slow.labels.astype(np.float32).ravel())
    assert fast.n_rows == 300


@pytest.mark.parametrize(
    "files",
    [
        {"a.csv": "1,2,3\n0,x,4\n"},  # a non-numeric cell
        {"a.csv": "1,2,3\n0,1\n"},  # a short row
        {"a.csv": "1,2,3\n", "b.csv": "1,2\n"},  # files of different widths
        {"a.csv": "\n\n"},  # no rows
    ],
)
def test_declines_what_the_codecs_must_judge(tmp_path, files):
    assert read_csv_float32(_channel(tmp_path, files).files) is None


def test_read_channel_keeps_the_codec_error_for_a_bad_cell(tmp_path):
    channel = _channel(tmp_path, {"train.csv": "1,2,3\n0,1,4\n1,oops,5\n"})
    with pytest.raises(UserError, match="line 3"):
        data.read_channel(channel, csv_weights=False)


def test_read_channel_takes_the_weight_column_from_the_fast_path(tmp_path):
    channel = _channel(tmp_path, {"train.csv": "1,0.5,3,4\n0,2,5,6\n"})
    batch = data.read_channel(channel, csv_weights=True)
    assert batch.weights is not None
    np.testing.assert_array_equal(batch.weights, [0.5, 2.0])
    np.testing.assert_array_equal(batch.features, [[3, 4], [5, 6]])


def test_training_entry_imports_xgboost_without_scikit_learn():
    code = (
        "import sys\n"
        "from containers.xgboost.__main__ import import_xgboost_lean\n"
        "import_xgboost_lean()\n"
        "import xgboost\n"
        "assert 'sklearn' not in sys.modules, 'sklearn was imported'\n"
        "import sklearn.model_selection\n"  # still importable afterwards (k-fold needs it)
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_prefetched_read_gives_the_same_rows_and_the_same_fallback(tmp_path):
    from containers.xgboost.csv_float32 import prefetch_csv_float32

    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = _channel(tmp_path / "good", {"a.csv": "1,2,3\n0,4,5\n"})
    prefetch_csv_float32(good.files)
    prefetched = read_csv_float32(good.files)
    assert prefetched is not None
    direct = read_csv_float32(good.files)  # the prefetched result was taken: this one reads again
    assert direct is not None
    np.testing.assert_array_equal(prefetched.features, direct.features)
    np.testing.assert_array_equal(prefetched.labels, direct.labels)
    bad = _channel(tmp_path / "bad", {"b.csv": "1,2,3\n0,x,5\n"})
    prefetch_csv_float32(bad.files)
    assert read_csv_float32(bad.files) is None  # the codec path reads it and names the line
    with pytest.raises(UserError, match="line 2"):
        data.read_channel(bad, csv_weights=False)


def test_the_training_entry_prefetches_a_one_host_csv_train_channel(tmp_path):
    code = (
        "import runpy, sys\n"
        "import containers.xgboost.csv_float32 as fast\n"
        "seen = []\n"
        "start = fast.prefetch_csv_float32\n"
        "fast.prefetch_csv_float32 = lambda paths: (seen.append(paths), start(paths))\n"
        "import containers.toolkit.entrypoint as entry\n"
        "entry.exit_process = sys.exit  # the image ends its process at once: here the test's checks run after it\n"
        "sys.argv = ['xgboost', 'train']\n"
        "try:\n"
        "    runpy.run_module('containers.xgboost', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "assert len(seen) == 1 and not fast._prefetched, (seen, fast._prefetched)\n"
        "print('ok')\n"
    )
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text('{"num_round": "2", "objective": "binary:logistic"}')
    (config / "inputdataconfig.json").write_text('{"train": {"ContentType": "text/csv"}}')
    (config / "resourceconfig.json").write_text('{"current_host": "algo-1", "hosts": ["algo-1"]}')
    channel = tmp_path / "input" / "data" / "train"
    channel.mkdir(parents=True)
    (channel / "train.csv").write_text("".join(f"{i % 2},{i},{i * 2 % 7}\n" for i in range(50)))
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
    assert (tmp_path / "model" / "xgboost-model").is_file()
