from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.pod_metrics import PodMetrics
from ...models.status import Status
from ...types import UNSET, Response, Unset


def _get_kwargs(
    namespace: str,
    name: str,
    *,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    timeout: str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["pretty"] = pretty

    params["resourceVersion"] = resource_version

    params["timeout"] = timeout

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}".format(
            namespace=quote(str(namespace), safe=""),
            name=quote(str(name), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> PodMetrics | Status | None:
    if response.status_code == 200:
        response_200 = PodMetrics.from_dict(response.json())

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

    if response.status_code == 405:
        response_405 = Status.from_dict(response.json())

        return response_405

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

    if response.status_code == 504:
        response_504 = Status.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[PodMetrics | Status]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    namespace: str,
    name: str,
    *,
    client: AuthenticatedClient | Client,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    timeout: str | Unset = UNSET,
) -> Response[PodMetrics | Status]:
    """Read the PodMetrics of one pod.

     404 `pods "<name>" not found` when the pod does not exist or is not Running, and 404
    `podmetrics.metrics.k8s.io "<namespace>/<name>" not found` when it has no metrics.

    Args:
        namespace (str):
        name (str):
        pretty (str | Unset):
        resource_version (str | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PodMetrics | Status]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        name=name,
        pretty=pretty,
        resource_version=resource_version,
        timeout=timeout,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    namespace: str,
    name: str,
    *,
    client: AuthenticatedClient | Client,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    timeout: str | Unset = UNSET,
) -> PodMetrics | Status | None:
    """Read the PodMetrics of one pod.

     404 `pods "<name>" not found` when the pod does not exist or is not Running, and 404
    `podmetrics.metrics.k8s.io "<namespace>/<name>" not found` when it has no metrics.

    Args:
        namespace (str):
        name (str):
        pretty (str | Unset):
        resource_version (str | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PodMetrics | Status
    """

    return sync_detailed(
        namespace=namespace,
        name=name,
        client=client,
        pretty=pretty,
        resource_version=resource_version,
        timeout=timeout,
    ).parsed


async def asyncio_detailed(
    namespace: str,
    name: str,
    *,
    client: AuthenticatedClient | Client,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    timeout: str | Unset = UNSET,
) -> Response[PodMetrics | Status]:
    """Read the PodMetrics of one pod.

     404 `pods "<name>" not found` when the pod does not exist or is not Running, and 404
    `podmetrics.metrics.k8s.io "<namespace>/<name>" not found` when it has no metrics.

    Args:
        namespace (str):
        name (str):
        pretty (str | Unset):
        resource_version (str | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PodMetrics | Status]
    """

    kwargs = _get_kwargs(
        namespace=namespace,
        name=name,
        pretty=pretty,
        resource_version=resource_version,
        timeout=timeout,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    namespace: str,
    name: str,
    *,
    client: AuthenticatedClient | Client,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    timeout: str | Unset = UNSET,
) -> PodMetrics | Status | None:
    """Read the PodMetrics of one pod.

     404 `pods "<name>" not found` when the pod does not exist or is not Running, and 404
    `podmetrics.metrics.k8s.io "<namespace>/<name>" not found` when it has no metrics.

    Args:
        namespace (str):
        name (str):
        pretty (str | Unset):
        resource_version (str | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PodMetrics | Status
    """

    return (
        await asyncio_detailed(
            namespace=namespace,
            name=name,
            client=client,
            pretty=pretty,
            resource_version=resource_version,
            timeout=timeout,
        )
    ).parsed
