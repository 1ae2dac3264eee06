"""The edge keeps a client's connection open between InvokeEndpoint calls (werkzeug alone closes every one)."""

import http.client
import json
from urllib.parse import urlsplit


def _post(connection, path, body, headers):
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read()


def test_invocations_reuse_one_connection_and_other_calls_still_close(stack_url):
    parts = urlsplit(stack_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        sockets = set()
        for _ in range(3):
            response, body = _post(connection, "/endpoints/no-such-endpoint/invocations", b"1,2", {})
            assert response.status == 400
            assert json.loads(body)["message"] == "Endpoint no-such-endpoint of account 123456789012 not found."
            assert response.getheader("Connection") is None  # kept open for the next call
            sockets.add(id(connection.sock))
        assert len(sockets) == 1  # http.client would have reconnected after a close
        headers = {"X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/x-amz-json-1.1"}
        response, _ = _post(connection, "/", b"{}", headers)
        assert response.status == 200
        assert response.getheader("Connection") == "close"
    finally:
        connection.close()
