"""The model file per framework version, and every form of model file read back (docs/containers.md).

The fixtures in ``fixtures/xgboost_1_7_binary`` were written by XGBoost 1.7.6 (the PyPI release) with
``Booster.save_model("<name>.model")``, its binary format, which the XGBoost installed here no longer reads;
``expected.json`` holds what XGBoost 1.7.6 predicted for its rows.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from containers.toolkit.errors import ModelLoadError
from containers.xgboost.model_format.legacy_binary import parse_legacy_binary
from containers.xgboost.model_format.model_files import framework_version, model_format, read_model, write_model

FIXTURES = Path(__file__).parent / "fixtures" / "xgboost_1_7_binary"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
ROWS = np.array(EXPECTED["X"], dtype=np.float32)


def _booster() -> xgb.Booster:
    rng = np.random.default_rng(3)
    features = rng.random((40, 3))
    return xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(features, label=features[:, 0] > 0.5), 3)


def _old_pickle(state: dict[str, object]) -> bytes:
    """A pickle as XGBoost 0.90 - 1.2 wrote it: protocol 3, ``xgboost.core.Booster`` rebuilt from its state."""
    inner = pickle.dumps(state, protocol=3)
    return b"\x80\x03cxgboost.core\nBooster\nq\x00)\x81" + inner[2:-1] + b"b."


@pytest.mark.parametrize(
    ("tag", "kind", "protocol"),
    [
        ("0.90-1-cpu-py3", "pickle", 3),
        ("0.90-2", "pickle", 3),
        ("1.0-1", "pickle", 3),
        ("1.0-1-cpu-py3", "pickle", 3),
        ("1.2-1", "pickle", 4),
        ("1.2-2", "pickle", 4),
        ("1", "pickle", 3),
        ("1.3-1", "native", 0),
        ("1.7-1", "native", 0),
        ("3.0-5", "native", 0),
        ("latest", "native", 0),
    ],
)
def test_the_image_tag_decides_the_format(tag: str, kind: str, protocol: int) -> None:
    fmt = model_format({"SAGESTACK_IMAGE_TAG": tag})
    assert (fmt.kind, fmt.protocol) == (kind, protocol)


def test_without_a_tag_the_newest_format_applies() -> None:
    assert model_format({}).kind == "native"
    assert framework_version("0.90-2") == (0, 90)


def test_a_pickled_model_loads_with_pickle_load_as_aws_documents(tmp_path: Path) -> None:
    booster = _booster()
    path = tmp_path / "xgboost-model"
    write_model(booster, path, model_format({"SAGESTACK_IMAGE_TAG": "1.0-1"}))

    raw = path.read_bytes()
    assert raw[:2] == b"\x80\x03"
    with path.open("rb") as stream:
        loaded = pickle.load(stream)  # what the Pipelines abalone evaluation script does
    features = np.random.default_rng(1).random((5, 3))
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_array_equal(loaded.inplace_predict(features), booster.inplace_predict(features))
    np.testing.assert_array_equal(read_model(path).inplace_predict(features), booster.inplace_predict(features))


def test_a_native_model_loads_with_booster_load_model(tmp_path: Path) -> None:
    booster = _booster()
    path = tmp_path / "xgboost-model"
    write_model(booster, path, model_format({"SAGESTACK_IMAGE_TAG": "1.7-1"}))

    assert path.read_bytes()[:1] == b"{"
    loaded = xgb.Booster()
    loaded.load_model(str(path))  # what AWS's docs say for 1.3-1 and later
    features = np.random.default_rng(1).random((5, 3))
    np.testing.assert_array_equal(loaded.inplace_predict(features), booster.inplace_predict(features))
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(path.read_bytes())


@pytest.mark.parametrize("name", sorted(EXPECTED["expected"]))
def test_models_in_the_removed_binary_format_predict_as_their_xgboost_did(name: str) -> None:
    booster = read_model(FIXTURES / f"{name}.model")

    predictions = booster.predict(xgb.DMatrix(ROWS))
    np.testing.assert_allclose(predictions, np.array(EXPECTED["expected"][name]), rtol=1e-6, atol=1e-7)


def test_the_binary_reader_knows_the_layout() -> None:
    model = parse_legacy_binary((FIXTURES / "multi_softprob.model").read_bytes())

    assert (model.objective, model.booster, model.num_class, model.num_feature) == ("multi:softprob", "gbtree", 3, 4)
    assert model.major_version == 1
    assert len(model.trees) == 9 and model.tree_info == [0, 1, 2] * 3


def test_a_pickle_of_an_old_xgboost_holding_the_binary_format_loads(tmp_path: Path) -> None:
    raw = (FIXTURES / "binary_logistic.model").read_bytes()
    path = tmp_path / "xgboost-model"
    state = {"handle": bytearray(raw), "feature_names": None, "feature_types": None, "booster": "gbtree"}
    path.write_bytes(_old_pickle(state))

    predictions = read_model(path).predict(xgb.DMatrix(ROWS))
    np.testing.assert_allclose(predictions, EXPECTED["expected"]["binary_logistic"], rtol=1e-6)


def test_a_pickle_of_xgboost_1_2_with_its_serialisation_header_loads(tmp_path: Path) -> None:
    binary = (FIXTURES / "reg_squarederror.model").read_bytes()
    serialised = b"CONFIG-offset:" + struct.pack("<q", len(binary)) + binary + b'{"Learner": {}}'
    path = tmp_path / "xgboost-model"
    path.write_bytes(_old_pickle({"handle": bytearray(serialised), "best_iteration": 1, "best_ntree_limit": 2}))

    booster = read_model(path)
    np.testing.assert_allclose(
        booster.predict(xgb.DMatrix(ROWS)), EXPECTED["expected"]["reg_squarederror"], rtol=1e-6, atol=1e-6
    )
    assert booster.attr("best_iteration") == "3"  # the model's own attribute, as XGBoost 1.2 read it


def test_a_pickle_of_something_else_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "xgboost-model"
    path.write_bytes(pickle.dumps(Path("/etc/passwd")))

    with pytest.raises(ModelLoadError, match="not an XGBoost Booster"):
        read_model(path)


@pytest.mark.parametrize("content", [b"not a model at all, just text", b"\x00" * 10, b"{ broken json"])
def test_a_file_that_is_no_model_names_itself_in_the_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "xgboost-model"
    path.write_bytes(content)

    with pytest.raises(ModelLoadError, match="xgboost-model"):
        read_model(path)
