"""The explainability execution's predictor: the model through a shadow endpoint, never the monitored endpoint."""

from __future__ import annotations

import pytest

from infra.control_plane.hosting.hosting_requests import ProductionVariant
from infra.control_plane.monitoring.clarify.monitoring_clarify import ClarifySetupError, _shadow_predictor

VARIANT = ProductionVariant(variant_name="AllTraffic", model_name="credit-model", instance_type="ml.m5.large")


def test_a_model_name_from_the_sdk_config_is_kept_for_the_shadow_endpoint() -> None:
    predictor = {"model_name": "baseline-model", "instance_type": "ml.c5.xlarge", "initial_instance_count": 2}
    assert _shadow_predictor(predictor, "credit", VARIANT) == {**predictor, "content_type": "text/csv"}


@pytest.mark.parametrize("predictor", [{}, {"endpoint_name": "credit", "accept_type": "text/csv"}])
def test_the_monitored_endpoint_is_replaced_by_a_shadow_endpoint_of_its_model(predictor: dict[str, str]) -> None:
    chosen = _shadow_predictor(predictor, "credit", VARIANT)
    assert "endpoint_name" not in chosen
    assert chosen["model_name"] == "credit-model"
    assert chosen["instance_type"] == "ml.m5.large"
    assert chosen["initial_instance_count"] == 1


def test_another_endpoint_named_in_the_config_is_kept() -> None:
    assert _shadow_predictor({"endpoint_name": "explainer"}, "credit", VARIANT)["endpoint_name"] == "explainer"


def test_no_model_to_create_a_shadow_endpoint_from_is_a_client_error() -> None:
    with pytest.raises(ClarifySetupError, match=r"ClientError: .*predictor.model_name.*credit"):
        _shadow_predictor({}, "credit", None)
