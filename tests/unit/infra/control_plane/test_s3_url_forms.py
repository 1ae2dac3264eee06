"""ModelDataUrl and S3 URIs in every form SageMaker accepts: ``s3://`` and S3's https URL forms."""

import pytest

from infra.control_plane.core.aws_services import S3AccessError, S3Location


@pytest.mark.parametrize(
    "url",
    [
        "s3://my-bucket/models/churn/model.tar.gz",
        "https://my-bucket.s3-us-west-2.amazonaws.com/models/churn/model.tar.gz",
        "https://my-bucket.s3.us-west-2.amazonaws.com/models/churn/model.tar.gz",
        "https://my-bucket.s3.amazonaws.com/models/churn/model.tar.gz",
        "https://my-bucket.s3.dualstack.us-west-2.amazonaws.com/models/churn/model.tar.gz",
        "https://s3.amazonaws.com/my-bucket/models/churn/model.tar.gz",
        "https://s3-us-west-2.amazonaws.com/my-bucket/models/churn/model.tar.gz",
        "https://s3.us-west-2.amazonaws.com/my-bucket/models/churn/model.tar.gz",
        "https://my-bucket.s3.cn-north-1.amazonaws.com.cn/models/churn/model.tar.gz",
    ],
)
def test_every_url_form_names_the_same_object(url: str) -> None:
    assert S3Location.parse(url) == S3Location("my-bucket", "models/churn/model.tar.gz")


def test_dotted_buckets_and_escaped_keys() -> None:
    location = S3Location.parse("https://my.dotted.bucket.s3.eu-west-1.amazonaws.com/a%20b/model.tar.gz")
    assert location == S3Location("my.dotted.bucket", "a b/model.tar.gz")


@pytest.mark.parametrize("url", ["https://example.com/my-bucket/key", "http://s3.amazonaws.com/b/k", "ftp://b/k"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(S3AccessError):
        S3Location.parse(url)
