"""Plain JSON requests to the kube-apiserver, with failures mapped onto `ApiError` / `KubeTransportError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from metrics_server.kube.errors import ApiError, KubeTransportError, describe_exception


def _decode(response: httpx.Response, body: bytes) -> dict[str, Any]:
    if response.status_code // 100 != 2:
        raise ApiError.from_body(response.status_code, body)
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise KubeTransportError(f"invalid JSON from {response.request.url.path}: {exc}") from exc
    if not isinstance(decoded, dict):
        raise KubeTransportError(f"expected a JSON object from {response.request.url.path}")
    return decoded


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
    request_timeout: float | None = None,
) -> dict[str, Any]:
    """Send one request and return the decoded JSON object of a 2xx answer.

    Raises `ApiError` for a non-2xx answer (the Status is decoded when present) and
    `KubeTransportError` when there is no usable answer.
    """
    content = orjson.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if content is not None else None
    try:
        response = await client.request(
            method,
            path,
            params=dict(params) if params else None,
            content=content,
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT if request_timeout is None else request_timeout,
        )
    except httpx.HTTPError as exc:
        raise KubeTransportError(f"{method} {path}: {describe_exception(exc)}") from exc
    return _decode(response, response.content)
