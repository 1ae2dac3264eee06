"""The training core, called directly (no subprocess): learning, parity with plain xgboost, formats, checkpoints."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from containers.toolkit.codecs import write_recordio
from containers.toolkit.environment import ChannelConfig
from containers.toolkit.metrics import escape_control_chars
from containers.xgboost import data, spec
from containers.xgboost.callbacks import list_checkpoints
from containers.xgboost.train import TrainSettings, load_matrices, read_resume_point, train_booster

from .conftest import to_csv

PARAMS = {"num_round": "30", "objective": "binary:logistic", "eta": "0.1", "max_depth": "3", "seed": "0"}


def _channels(tmp_path, files_by_channel, content_type="text/csv"):
    configs = {}
    for name, files in files_by_channel.items():
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for file_name, content in files.items():
            (root / file_name).write_bytes(content)
        configs[name] = ChannelConfig(name=name, path=root, content_type=content_type)
    return data.discover(configs)


def _train_on(tmp_path, raw, files_by_channel, content_type="text/csv", settings=None):
    values = spec.validate(raw)
    channels = _channels(tmp_path, files_by_channel, content_type)
    train, valid = load_matrices(channels, values)
    dvalid = data.to_dmatrix(valid) if valid is not None else None
    return train_booster(values, data.to_dmatrix(train), dvalid, settings)


def test_learns_german_credit_and_matches_plain_xgboost(tmp_path, german_credit):
    ds = german_credit
    booster = _train_on(
        tmp_path,
        PARAMS,
        {"train": {"train.csv": to_csv(ds.y_train, ds.x_train)}, "validation": {"v.csv": to_csv(ds.y_test, ds.x_test)}},
    )
    ours = booster.inplace_predict(ds.x_test)
    assert roc_auc_score(ds.y_test, ours) > 0.70

    plain = xgb.train(
        {"objective": "binary:logistic", "eta": 0.1, "max_depth": 3, "seed": 0},
        xgb.DMatrix(ds.x_train, label=ds.y_train),
        num_boost_round=30,
    )
    np.testing.assert_allclose(ours, plain.inplace_predict(ds.x_test), rtol=1e-6, atol=1e-6)


def test_every_round_prints_a_line_the_tuning_regex_reads(tmp_path, small_binary, capsys):
    ds = small_binary
    raw = {**PARAMS, "num_round": "3", "eval_metric": "auc,accuracy"}
    _train_on(
        tmp_path,
        raw,
        {"train": {"t.csv": to_csv(ds.y_train, ds.x_train)}, "validation": {"v.csv": to_csv(ds.y_test, ds.x_test)}},
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split("\t")[0] for line in lines] == ["[0]", "[1]", "[2]"]
    names = [part.split(":")[0] for part in lines[0].split("\t")[1:]]
    assert names == ["train-auc", "train-accuracy", "validation-auc", "validation-accuracy"]
    escaped = escape_control_chars(lines[-1])
    # the last metric of the line is read exactly, as SageMaker reads it
    accuracy = float(re.match(spec.metric_regex("validation", "accuracy"), escaped).group(1))
    assert 0.5 < accuracy <= 1.0
    # the official regex's (\S+) runs on through "#011" when a metric is not last: the value leads the group
    auc_group = re.match(spec.metric_regex("validation", "auc"), escaped).group(1)
    assert 0.5 < float(auc_group.split("#011")[0]) <= 1.0


def _libsvm(labels, features):
    lines = []
    for label, row in zip(labels, features, strict=True):
        cells = " ".join(f"{i}:{float(v)!r}" for i, v in enumerate(row) if v != 0)
        lines.append(f"{label:g} {cells}")
    return ("\n".join(lines) + "\n").encode()


def _parquet(labels, features, path):
    frame = pd.DataFrame(np.column_stack([labels, features]), columns=["label"] + [f"f{i}" for i in range(4)])
    frame.to_parquet(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    "content_type", ["text/csv", "text/libsvm", "application/x-parquet", "application/x-recordio-protobuf"]
)
def test_every_training_content_type_trains_the_same_model(tmp_path, small_binary, content_type):
    ds = small_binary
    encode = {
        "text/csv": lambda: to_csv(ds.y_train, ds.x_train),
        "text/libsvm": lambda: _libsvm(ds.y_train, ds.x_train),
        "application/x-parquet": lambda: _parquet(ds.y_train, ds.x_train, tmp_path / "p.parquet"),
        "application/x-recordio-protobuf": lambda: write_recordio(
            ds.x_train.astype(np.float32), ds.y_train.astype(np.float32)
        ),
    }[content_type]
    raw = {**PARAMS, "num_round": "5"}
    booster = _train_on(tmp_path / "ch", raw, {"train": {"part-0": encode()}}, content_type)
    reference = xgb.train(
        {"objective": "binary:logistic", "eta": 0.1, "max_depth": 3, "seed": 0},
        xgb.DMatrix(ds.x_train.astype(np.float32), label=ds.y_train),
        num_boost_round=5,
    )
    np.testing.assert_allclose(
        booster.inplace_predict(ds.x_test), reference.inplace_predict(ds.x_test), rtol=1e-5, atol=1e-5
    )


def test_csv_weights_take_the_second_column(tmp_path, small_binary):
    ds = small_binary
    weights = np.where(ds.y_train > 0, 3.0, 1.0)
    raw = {**PARAMS, "num_round": "4", "csv_weights": "1"}
    body = to_csv(ds.y_train, np.column_stack([weights, ds.x_train]))
    booster = _train_on(tmp_path, raw, {"train": {"t.csv": body}})
    reference = xgb.train(
        {"objective": "binary:logistic", "eta": 0.1, "max_depth": 3, "seed": 0},
        xgb.DMatrix(ds.x_train, label=ds.y_train, weight=weights),
        num_boost_round=4,
    )
    np.testing.assert_allclose(booster.inplace_predict(ds.x_test), reference.inplace_predict(ds.x_test), atol=1e-6)


def test_checkpoints_keep_five_and_resume_continues_the_round_count(tmp_path, small_binary, capsys):
    ds = small_binary
    files = {"train": {"t.csv": to_csv(ds.y_train, ds.x_train)}}
    checkpoints = tmp_path / "ck"
    first = _train_on(
        tmp_path / "a", {**PARAMS, "num_round": "7"}, files, settings=TrainSettings(checkpoint_dir=checkpoints)
    )
    assert [n for n, _ in list_checkpoints(checkpoints)] == [2, 3, 4, 5, 6]

    for _, path in list_checkpoints(checkpoints)[2:]:
        path.unlink()  # as if the job had been stopped after round 3
    resume = read_resume_point(checkpoints)
    assert resume is not None and resume[0] == 3
    capsys.readouterr()  # forget the first run's lines
    resumed = _train_on(
        tmp_path / "b",
        {**PARAMS, "num_round": "7"},
        files,
        settings=TrainSettings(checkpoint_dir=checkpoints, resume=resume),
    )
    rounds = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert rounds == ["[4]", "[5]", "[6]"]
    assert resumed.num_boosted_rounds() == 7
    np.testing.assert_allclose(resumed.inplace_predict(ds.x_test), first.inplace_predict(ds.x_test), atol=1e-6)


def test_early_stopping_cuts_the_model_at_the_best_round(tmp_path, small_binary):
    ds = small_binary
    noise = np.random.default_rng(5).integers(0, 2, size=len(ds.y_test)).astype(float)
    raw = {**PARAMS, "num_round": "60", "eta": "0.5", "eval_metric": "logloss", "early_stopping_rounds": "3"}
    booster = _train_on(
        tmp_path,
        raw,
        {"train": {"t.csv": to_csv(ds.y_train, ds.x_train)}, "validation": {"v.csv": to_csv(noise, ds.x_test)}},
    )
    assert booster.num_boosted_rounds() < 60
    assert booster.num_boosted_rounds() == int(booster.attr("best_iteration")) + 1


def test_multiclass_softmax_learns_digits(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data[:600], digits.target[:600].astype(float)
    raw = {"num_round": "10", "objective": "multi:softmax", "num_class": "10", "eval_metric": "merror,accuracy"}
    booster = _train_on(tmp_path, raw, {"train": {"t.csv": to_csv(y[:500], x[:500])}})
    accuracy = float(np.mean(booster.inplace_predict(x[500:]) == y[500:]))
    assert accuracy > 0.6  # chance is 0.1; plain xgboost gets 0.71 with these settings


def test_xgboost_rejections_become_user_errors_without_the_stack_trace(tmp_path, small_binary):
    from containers.toolkit.errors import UserError

    ds = small_binary
    raw = {"num_round": "2", "objective": "binary:logistic"}
    with pytest.raises(UserError, match=r"XGBoost rejected the training job: \S") as caught:
        _train_on(tmp_path, raw, {"train": {"t.csv": to_csv(ds.y_train * 3, ds.x_train)}})
    assert "Stack trace" not in caught.value.message


def test_tuning_metric_drives_early_stopping_and_is_printed(tmp_path, small_binary, caplog):
    caplog.set_level("INFO")
    ds = small_binary
    noise = np.random.default_rng(5).integers(0, 2, size=len(ds.y_test)).astype(float)
    raw = {
        **PARAMS,
        "num_round": "40",
        "eta": "0.5",
        "early_stopping_rounds": "2",
        "_tuning_objective_metric": "validation:accuracy",
    }
    booster = _train_on(
        tmp_path,
        raw,
        {"train": {"t.csv": to_csv(ds.y_train, ds.x_train)}, "validation": {"v.csv": to_csv(noise, ds.x_test)}},
    )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]
    assert all("\tvalidation-accuracy:" in line for line in lines)
    assert booster.num_boosted_rounds() < 40
