from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.api_group_list import APIGroupList
from ...models.status import Status
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    timeout: str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["timeout"] = timeout

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/apis",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> APIGroupList | Status | None:
    if response.status_code == 200:
        response_200 = APIGroupList.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Status.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Status.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Status.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Status.from_dict(response.json())

        return response_404

    if response.status_code == 406:
        response_406 = Status.from_dict(response.json())

        return response_406

    if response.status_code == 429:
        response_429 = Status.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Status.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Status.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[APIGroupList | Status]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    timeout: str | Unset = UNSET,
) -> Response[APIGroupList | Status]:
    """List the API groups this server serves (APIGroupList).

     Behind kube-apiserver this path is answered by kube-aggregator itself, not proxied; the server
    answers it for direct callers and for the aggregator's discovery fallback.

    Args:
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[APIGroupList | Status]
    """

    kwargs = _get_kwargs(
        timeout=timeout,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    timeout: str | Unset = UNSET,
) -> APIGroupList | Status | None:
    """List the API groups this server serves (APIGroupList).

     Behind kube-apiserver this path is answered by kube-aggregator itself, not proxied; the server
    answers it for direct callers and for the aggregator's discovery fallback.

    Args:
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        APIGroupList | Status
    """

    return sync_detailed(
        client=client,
        timeout=timeout,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    timeout: str | Unset = UNSET,
) -> Response[APIGroupList | Status]:
    """List the API groups this server serves (APIGroupList).

     Behind kube-apiserver this path is answered by kube-aggregator itself, not proxied; the server
    answers it for direct callers and for the aggregator's discovery fallback.

    Args:
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[APIGroupList | Status]
    """

    kwargs = _get_kwargs(
        timeout=timeout,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    timeout: str | Unset = UNSET,
) -> APIGroupList | Status | None:
    """List the API groups this server serves (APIGroupList).

     Behind kube-apiserver this path is answered by kube-aggregator itself, not proxied; the server
    answers it for direct callers and for the aggregator's discovery fallback.

    Args:
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        APIGroupList | Status
    """

    return (
        await asyncio_detailed(
            client=client,
            timeout=timeout,
        )
    ).parsed
