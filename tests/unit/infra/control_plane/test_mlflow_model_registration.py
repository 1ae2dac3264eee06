"""The Model Registry group of an MLflow registered model, named as AWS names it (docs/experiments.md)."""

from infra.control_plane.mlflow_servers.model_registration import model_package_group_name


def test_the_group_is_the_model_name_and_six_hex_digits_of_the_servers_name_hash():
    # sha256(b"credit-server") = b3f8a4...: the first six characters of the hash of the ARN's last segment
    assert model_package_group_name("credit", "credit-server") == "credit-b3f8a4"
    assert model_package_group_name("credit", "other-server") != "credit-b3f8a4"
