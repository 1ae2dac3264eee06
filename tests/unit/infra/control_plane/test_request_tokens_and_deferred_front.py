"""Known answers: request tokens (replay, conflict, bounded) and which requests make the edge import CloudFormation."""

import pytest

from infra.control_plane.cloudformation.deferred_front import DeferredFront
from infra.control_plane.core import idempotency
from infra.control_plane.core.errors import ConflictException
from infra.control_plane.core.idempotency import IdempotencyTokens


def test_a_token_replays_its_first_answer_and_refuses_a_different_request():
    tokens, calls = IdempotencyTokens(), []
    params = {"PipelineName": "p", "ClientRequestToken": "t" * 32}
    first = tokens.answer("CreatePipeline", params, lambda: calls.append(1) or {"PipelineArn": "arn:1"})
    again = tokens.answer("CreatePipeline", params, lambda: calls.append(2) or {"PipelineArn": "arn:2"})
    assert first == again == {"PipelineArn": "arn:1"} and calls == [1]
    with pytest.raises(ConflictException):
        tokens.answer("CreatePipeline", {**params, "PipelineName": "q"}, lambda: {"PipelineArn": "arn:3"})


def test_the_oldest_answers_are_dropped_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(idempotency, "MAX_ANSWERS", 3)
    tokens = IdempotencyTokens()
    for n in range(5):
        tokens.answer("Op", {"ClientRequestToken": f"token-{n}"}, lambda n=n: {"n": n})
    assert tokens.answer("Op", {"ClientRequestToken": "token-4"}, lambda: {"n": -1}) == {"n": 4}
    assert tokens.answer("Op", {"ClientRequestToken": "token-0"}, lambda: {"n": -1}) == {"n": -1}  # forgotten


class _Moto:
    def __init__(self):
        self.seen = []

    def __call__(self, environ, start_response):
        self.seen.append(environ.get("HTTP_AUTHORIZATION"))
        return [b"moto"]


def _signed(service):
    return {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/{service}/aws4_request, x"}


def test_only_a_cloudformation_or_unsigned_request_builds_the_front(monkeypatch):
    built = []
    front = DeferredFront(_Moto(), None, "123456789012", "us-east-1")
    monkeypatch.setattr(front, "load", lambda: built.append(1) or (lambda environ, start_response: [b"cfn"]))
    assert front(_signed("s3"), None) == [b"moto"]
    assert front({"QUERY_STRING": "X-Amz-Credential=k%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"}, None) == [b"moto"]
    assert built == []
    assert front(_signed("cloudformation"), None) == [b"cfn"]
    assert front({"QUERY_STRING": "Action=DescribeStacks"}, None) == [b"cfn"]
    assert built == [1, 1]  # load() itself builds the real front once (the patched one here does not cache)
