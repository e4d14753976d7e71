"""Bad requests get the status and Status object a real API server sends, and the server carries on."""

from __future__ import annotations

import http.client
import json

import pytest

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects, rawhttp

SLICES = "/apis/resource.k8s.io/v1/resourceslices"


@pytest.mark.parametrize(("method", "path", "body", "content_type", "code", "reason"), [
    ("POST", SLICES, b'{"kind": "ResourceSlice", ', "application/json", 400, "BadRequest"),
    ("POST", SLICES, b"[1, 2]", "application/json", 400, "BadRequest"),
    ("POST", SLICES, b"\xff\xfe", "application/json", 400, "BadRequest"),
    ("POST", SLICES, json.dumps(objects.node("n1")).encode(), "application/json", 400, "BadRequest"),
    ("POST", SLICES, b"{}", "text/plain", 415, "UnsupportedMediaType"),
    ("PATCH", SLICES + "/s1", b"{}", "application/json", 415, "UnsupportedMediaType"),
    ("GET", "/apis/resource.k8s.io/v1/widgets", None, "application/json", 404, "NotFound"),
    ("GET", "/apis/resource.k8s.io/v9/resourceslices", None, "application/json", 404, "NotFound"),
    ("GET", "/apis/nothing.example.com/v1", None, "application/json", 404, "NotFound"),
    ("GET", "/api/v1/namespaces/default/resourceslices", None, "application/json", 404, "NotFound"),
    ("GET", "/api/v1/pods/p1", None, "application/json", 404, "NotFound"),
    ("GET", SLICES + "/s1/scale", None, "application/json", 404, "NotFound"),
    ("GET", "/nonsense", None, "application/json", 404, "NotFound"),
    ("POST", SLICES + "/s1", b"{}", "application/json", 405, "MethodNotAllowed"),
    ("GET", SLICES + "?limit=ten", None, "application/json", 400, "BadRequest"),
    ("GET", SLICES + "?watch=true&resourceVersion=abc", None, "application/json", 400, "BadRequest"),
])
def test_bad_requests_get_a_status(apiserver: ApiServer, method: str, path: str, body: bytes | None,  # noqa: PLR0917
                                   content_type: str, code: int, reason: str) -> None:
    status, result, headers = rawhttp.request(apiserver, method, path, body, content_type=content_type)
    assert status == code
    assert headers["content-type"] == "application/json"
    assert result["kind"] == "Status"
    assert result["status"] == "Failure"
    assert result["code"] == code
    assert result["reason"] == reason


def test_an_oversized_body_is_a_413_and_the_server_keeps_serving(apiserver: ApiServer) -> None:
    body = json.dumps({"metadata": {"name": "big", "annotations": {"x": "y" * (3 * 1024 * 1024)}}})
    status, result, _ = rawhttp.request(apiserver, "POST", SLICES, body)
    assert status == 413
    assert result["reason"] == "RequestEntityTooLarge"
    status, _, _ = rawhttp.request(apiserver, "GET", SLICES)
    assert status == 200


def test_a_namespace_mismatch_between_url_and_body_is_a_400(apiserver: ApiServer) -> None:
    body = objects.pod("p1")
    body["metadata"]["namespace"] = "kube-system"
    path = "/api/v1/namespaces/default/pods"
    status, result, _ = rawhttp.request(apiserver, "POST", path, json.dumps(body))
    assert status == 400
    assert "does not match the namespace" in result["message"]


def test_bad_requests_lose_no_object(apiserver: ApiServer) -> None:
    """A burst of garbage between good writes leaves every good object intact and the server alive."""
    garbage = [b"{", b"null", b'"text"', b'{"spec": 5}', b'{"metadata": []}', b'{"kind": "Pod"}']
    for index, junk in enumerate(garbage):
        good = objects.resource_slice(f"s{index}", "n1")
        assert rawhttp.request(apiserver, "POST", SLICES, json.dumps(good))[0] == 201
        status, _, _ = rawhttp.request(apiserver, "POST", SLICES, junk)
        assert 400 <= status < 500
        status, _, _ = rawhttp.request(apiserver, "PUT", f"{SLICES}/s{index}", junk)
        assert 400 <= status < 500
        status, _, _ = rawhttp.request(apiserver, "PATCH", f"{SLICES}/s{index}", junk,
                                       content_type="application/merge-patch+json")
        assert 400 <= status < 500
    status, listing, _ = rawhttp.request(apiserver, "GET", SLICES)
    assert status == 200
    assert [s["metadata"]["name"] for s in listing["items"]] == [f"s{i}" for i in range(len(garbage))]


def test_keep_alive_connection_survives_errors(apiserver: ApiServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=10)
    try:
        for path in ["/api/v1/nodes/missing", "/api/v1/nodes", "/bogus", "/version"]:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status in (200, 404)
    finally:
        conn.close()


def test_a_yaml_body_whose_aliases_would_multiply_it_is_a_400_at_once(apiserver: ApiServer) -> None:
    """The server reads YAML bodies with the bounded loader of config files, so a few hundred bytes of
    nested aliases are refused before they expand (safe_load took seconds and a gigabyte)."""
    levels = ['a0: &a0 ["lol"]']
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    body = ("\n".join(levels) + "\n").encode()
    status, result, _ = rawhttp.request(apiserver, "POST", SLICES, body, content_type="application/yaml")
    assert status == 400
    assert "once alias" in result["message"]
    status, _, _ = rawhttp.request(apiserver, "GET", SLICES, None)
    assert status == 200
