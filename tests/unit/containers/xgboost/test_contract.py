"""``python -m containers.xgboost train`` as SageMaker runs it: an /opt/ml tree in, a model or a failure file out."""

from __future__ import annotations

import re
import signal
import time

import numpy as np
import pytest
import xgboost as xgb

from .conftest import Channel, failure_text, layout_host, model_files, run_train, start_train, to_csv

HPS = {"num_round": "5", "objective": "binary:logistic", "max_depth": "3", "eval_metric": "auc"}


def test_train_writes_a_model_plain_xgboost_loads(tmp_path, small_binary):
    ds = small_binary
    base = layout_host(
        tmp_path,
        HPS,
        {
            "train": Channel({"train.csv": to_csv(ds.y_train, ds.x_train)}),
            "validation": Channel({"v.csv": to_csv(ds.y_test, ds.x_test)}),
        },
    )
    code, output = run_train(base)
    assert code == 0, output
    assert model_files(base) == ["xgboost-model"]
    assert (base / "output" / "success").exists()
    booster = xgb.Booster()
    booster.load_model(str(base / "model" / "xgboost-model"))
    assert booster.num_boosted_rounds() == 5
    assert "[4]\ttrain-auc:" in output and "\tvalidation-auc:" in output


def _expect_failure(base, *fragments):
    code, output = run_train(base)
    assert code != 0, output
    text = failure_text(base)
    for fragment in fragments:
        assert fragment in text, text
    assert model_files(base) == []
    return text


def test_malformed_csv_row_names_file_and_line(tmp_path, small_binary):
    ds = small_binary
    rows = to_csv(ds.y_train[:5], ds.x_train[:5]).decode().splitlines()
    rows[3] = "1,0.5,abc,0.1,0.2"
    base = layout_host(tmp_path, HPS, {"train": Channel({"bad.csv": ("\n".join(rows) + "\n").encode()})})
    text = _expect_failure(base, "bad.csv", "line 4")
    assert text.startswith("ClientError")


def test_empty_train_channel(tmp_path):
    base = layout_host(tmp_path, HPS, {"train": Channel({})})
    _expect_failure(base, "No data in training channel path")


def test_empty_validation_channel(tmp_path, small_binary):
    ds = small_binary
    base = layout_host(
        tmp_path, HPS, {"train": Channel({"t.csv": to_csv(ds.y_train, ds.x_train)}), "validation": Channel({})}
    )
    _expect_failure(base, "No data in validation channel path")


def test_missing_label_in_recordio(tmp_path, small_binary):
    from containers.toolkit.codecs import write_recordio

    body = write_recordio(small_binary.x_train.astype(np.float32))  # features only
    base = layout_host(tmp_path, HPS, {"train": Channel({"part": body}, "application/x-recordio-protobuf")})
    _expect_failure(base, "without labels")


@pytest.mark.parametrize(
    ("hyperparameters", "channels", "message"),
    [
        (
            HPS,
            {"train": Channel({"t.csv": b"1,2\n"}), "extra": Channel({"e.csv": b"1,2\n"})},
            "Extraneous channel found: extra",
        ),
        (HPS, {"validation": Channel({"t.csv": b"1,2\n"})}, "Missing required channel: train"),
        (HPS, {"train": Channel({"t.csv": b"1,2\n"}, input_mode="Pipe")}, "Pipe mode is not supported"),
        (
            HPS,
            {"train": Channel({"t.csv": b"1,2\n"}, content_type="application/json")},
            "application/json is not an accepted ContentType",
        ),
        (HPS, {"train": Channel({"t.csv": b"1,2\n"}, content_type="text/csv;label_size=2")}, "label_size"),
        ({**HPS, "bogus": "1"}, {"train": Channel({"t.csv": b"1,2\n"})}, "Extraneous hyperparameter found: bogus"),
        ({"eta": "0.1"}, {"train": Channel({"t.csv": b"1,2\n"})}, "Missing required hyperparameter: num_round"),
    ],
)
def test_bad_configuration_fails_with_a_clear_reason(tmp_path, hyperparameters, channels, message):
    base = layout_host(tmp_path, hyperparameters, channels)
    _expect_failure(base, message)


def test_default_content_type_is_libsvm(tmp_path):
    base = layout_host(tmp_path, HPS, {"train": Channel({"t": b"1 0:1.0 1:2.0\n0 0:-1.0 1:0.5\n"}, None)})
    code, output = run_train(base)
    assert code == 0, output
    # no ContentType: the channel was read as LIBSVM (as CSV these lines would be a malformed-row ClientError)
    assert failure_text(base) == "" and (base / "output" / "success").exists()
    assert model_files(base) == ["xgboost-model"]
    booster = xgb.Booster(model_file=str(base / "model" / "xgboost-model"))
    assert booster.num_boosted_rounds() == 5 and booster.num_features() == 2  # indices 0 and 1, as written
    assert re.findall(r"\[(\d+)\]\ttrain-auc:", output) == ["0", "1", "2", "3", "4"]


def test_checkpoint_resume_through_the_entry_point(tmp_path, small_binary):
    ds = small_binary
    channels = {"train": Channel({"t.csv": to_csv(ds.y_train, ds.x_train)})}
    base = layout_host(tmp_path, {**HPS, "num_round": "3"}, channels, checkpoints=True)
    assert run_train(base)[0] == 0
    assert sorted(p.name for p in (base / "checkpoints").iterdir()) == [
        "xgboost-checkpoint.0",
        "xgboost-checkpoint.1",
        "xgboost-checkpoint.2",
    ]
    layout_host(tmp_path, {**HPS, "num_round": "5"}, channels, checkpoints=True)
    code, output = run_train(base)
    assert code == 0, output
    rounds = re.findall(r"\[(\d+)\]\ttrain-auc:", output)
    assert rounds == ["3", "4"]
    booster = xgb.Booster(model_file=str(base / "model" / "xgboost-model"))
    assert booster.num_boosted_rounds() == 5


def test_sigterm_with_save_model_on_termination_keeps_the_last_round(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 20))
    y = (x[:, 0] > 0).astype(float)
    hps = {
        "num_round": "100000",
        "objective": "binary:logistic",
        "save_model_on_termination": "true",
        "max_depth": "8",
        "eta": "0.01",
        "nthread": "1",
    }
    base = layout_host(tmp_path, hps, {"train": Channel({"t.csv": to_csv(y, x)})})
    process = start_train(base)
    deadline = time.monotonic() + 60
    while not (base / "model" / "xgboost-model").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert model_files(base) == ["xgboost-model"]
    assert xgb.Booster(model_file=str(base / "model" / "xgboost-model")).num_boosted_rounds() >= 1


def test_sigterm_without_the_flag_fails_and_leaves_no_model(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 20))
    y = (x[:, 0] > 0).astype(float)
    hps = {"num_round": "100000", "objective": "binary:logistic", "max_depth": "8", "eta": "0.01", "nthread": "1"}
    base = layout_host(tmp_path, hps, {"train": Channel({"t.csv": to_csv(y, x)})})
    process = start_train(base)
    deadline = time.monotonic() + 60
    while "[2]" not in (process.stdout.readline() or "[2]") and time.monotonic() < deadline:
        pass
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert "SIGTERM" in failure_text(base)
    assert model_files(base) == []


def test_kfold_saves_one_model_per_fold_and_out_of_fold_predictions(tmp_path, small_binary):
    ds = small_binary
    hps = {**HPS, "num_round": "4", "_kfold": "3", "_num_cv_round": "2"}
    base = layout_host(tmp_path, hps, {"train": Channel({"t.csv": to_csv(ds.y_train, ds.x_train)})})
    code, output = run_train(base)
    assert code == 0, output
    assert model_files(base) == [f"xgboost-model-{i}" for i in range(6)]
    predictions = np.loadtxt(base / "output" / "data" / "predictions.csv", delimiter=",")
    assert predictions.shape == (len(ds.y_train),)
    assert np.mean((predictions > 0.5) == ds.y_train) > 0.8
    assert len(re.findall(r"\[4\]\ttrain-auc:[0-9.]+\tvalidation-auc:[0-9.]+", output)) == 2


def test_trained_artifact_scores_the_holdout_through_the_serving_app(tmp_path, german_credit):
    from sklearn.metrics import roc_auc_score

    from containers.toolkit.model_server.serving import ServingConfig, create_app
    from containers.xgboost.serve import XGBoostHandler

    ds = german_credit
    hps = {"num_round": "40", "objective": "binary:logistic", "eta": "0.1", "max_depth": "3", "eval_metric": "auc"}
    base = layout_host(tmp_path, hps, {"train": Channel({"train.csv": to_csv(ds.y_train, ds.x_train)})})
    code, output = run_train(base)
    assert code == 0, output
    client = create_app(XGBoostHandler(ServingConfig(model_dir=base / "model", environ={}))).test_client()
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in ds.x_test).encode()
    response = client.post("/invocations", data=body, content_type="text/csv")
    scores = [float(line) for line in response.data.decode().splitlines()]
    assert len(scores) == len(ds.y_test)
    assert roc_auc_score(ds.y_test, scores) > 0.70


SCRIPT = """
import argparse, os
import numpy as np
import xgboost as xgb

parser = argparse.ArgumentParser()
parser.add_argument("--num_round", type=int)
args, _ = parser.parse_known_args()
data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "t.csv"), delimiter=",")
booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(data[:, 1:], label=data[:, 0]), args.num_round)
booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"))
print("script done with", args.num_round, "rounds")
"""


def test_script_mode_runs_the_users_entry_point(tmp_path, small_binary):
    ds = small_binary
    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text(SCRIPT)
    hps = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{code}"', "num_round": "3"}
    base = layout_host(
        tmp_path / "host",
        hps,
        {"train": Channel({"t.csv": to_csv(ds.y_train, ds.x_train)}), "anything": Channel({"x": b"1"})},
    )
    exit_code, output = run_train(base)
    assert exit_code == 0, output
    assert "script done with 3 rounds" in output
    assert xgb.Booster(model_file=str(base / "model" / "model.json")).num_boosted_rounds() == 3
