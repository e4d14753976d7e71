"""Raw HTTP requests for the cases the typed client cannot send (bad bodies, odd content types)."""

from __future__ import annotations

import http.client
import json
from typing import Any

from dra_driver.simulation.apiserver import ApiServer


def request(server: ApiServer, method: str, path: str, body: bytes | str | None = None, *,
            content_type: str = "application/json", headers: dict[str, str] | None = None,
            ) -> tuple[int, Any, dict[str, str]]:
    """Send one request; return status, the decoded JSON body (or raw text) and the headers."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        all_headers = {"Content-Type": content_type, **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        try:
            decoded: Any = json.loads(data)
        except ValueError:
            decoded = data.decode(errors="replace")
        return response.status, decoded, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
