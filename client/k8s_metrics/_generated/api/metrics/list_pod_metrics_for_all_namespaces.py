from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.pod_metrics_list import PodMetricsList
from ...models.resource_version_match import (
    ResourceVersionMatch,
)
from ...models.status import Status
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    allow_watch_bookmarks: bool | Unset = UNSET,
    continue_: str | Unset = UNSET,
    field_selector: str | Unset = UNSET,
    label_selector: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    resource_version_match: ResourceVersionMatch | Unset = UNSET,
    send_initial_events: bool | Unset = UNSET,
    timeout: str | Unset = UNSET,
    timeout_seconds: int | Unset = UNSET,
    watch: bool | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["allowWatchBookmarks"] = allow_watch_bookmarks

    params["continue"] = continue_

    params["fieldSelector"] = field_selector

    params["labelSelector"] = label_selector

    params["limit"] = limit

    params["pretty"] = pretty

    params["resourceVersion"] = resource_version

    json_resource_version_match: str | Unset = UNSET
    if not isinstance(resource_version_match, Unset):
        json_resource_version_match = resource_version_match

    params["resourceVersionMatch"] = json_resource_version_match

    params["sendInitialEvents"] = send_initial_events

    params["timeout"] = timeout

    params["timeoutSeconds"] = timeout_seconds

    params["watch"] = watch

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/apis/metrics.k8s.io/v1beta1/pods",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> PodMetricsList | Status | None:
    if response.status_code == 200:
        response_200 = PodMetricsList.from_dict(response.json())

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

    if response.status_code == 422:
        response_422 = Status.from_dict(response.json())

        return response_422

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
) -> Response[PodMetricsList | Status]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    allow_watch_bookmarks: bool | Unset = UNSET,
    continue_: str | Unset = UNSET,
    field_selector: str | Unset = UNSET,
    label_selector: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    resource_version_match: ResourceVersionMatch | Unset = UNSET,
    send_initial_events: bool | Unset = UNSET,
    timeout: str | Unset = UNSET,
    timeout_seconds: int | Unset = UNSET,
    watch: bool | Unset = UNSET,
) -> Response[PodMetricsList | Status]:
    """List PodMetrics in all namespaces.

     Running pods selected by `labelSelector` and by `fieldSelector` on `metadata.name`,
    `metadata.namespace` or `spec.nodeName`, that have servable metrics, sorted by namespace then name.

    Args:
        allow_watch_bookmarks (bool | Unset):
        continue_ (str | Unset):
        field_selector (str | Unset):
        label_selector (str | Unset):
        limit (int | Unset):
        pretty (str | Unset):
        resource_version (str | Unset):
        resource_version_match (ResourceVersionMatch | Unset): How `resourceVersion` applies to a
            list; empty means unset.
        send_initial_events (bool | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.
        timeout_seconds (int | Unset):
        watch (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PodMetricsList | Status]
    """

    kwargs = _get_kwargs(
        allow_watch_bookmarks=allow_watch_bookmarks,
        continue_=continue_,
        field_selector=field_selector,
        label_selector=label_selector,
        limit=limit,
        pretty=pretty,
        resource_version=resource_version,
        resource_version_match=resource_version_match,
        send_initial_events=send_initial_events,
        timeout=timeout,
        timeout_seconds=timeout_seconds,
        watch=watch,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    allow_watch_bookmarks: bool | Unset = UNSET,
    continue_: str | Unset = UNSET,
    field_selector: str | Unset = UNSET,
    label_selector: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    resource_version_match: ResourceVersionMatch | Unset = UNSET,
    send_initial_events: bool | Unset = UNSET,
    timeout: str | Unset = UNSET,
    timeout_seconds: int | Unset = UNSET,
    watch: bool | Unset = UNSET,
) -> PodMetricsList | Status | None:
    """List PodMetrics in all namespaces.

     Running pods selected by `labelSelector` and by `fieldSelector` on `metadata.name`,
    `metadata.namespace` or `spec.nodeName`, that have servable metrics, sorted by namespace then name.

    Args:
        allow_watch_bookmarks (bool | Unset):
        continue_ (str | Unset):
        field_selector (str | Unset):
        label_selector (str | Unset):
        limit (int | Unset):
        pretty (str | Unset):
        resource_version (str | Unset):
        resource_version_match (ResourceVersionMatch | Unset): How `resourceVersion` applies to a
            list; empty means unset.
        send_initial_events (bool | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.
        timeout_seconds (int | Unset):
        watch (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PodMetricsList | Status
    """

    return sync_detailed(
        client=client,
        allow_watch_bookmarks=allow_watch_bookmarks,
        continue_=continue_,
        field_selector=field_selector,
        label_selector=label_selector,
        limit=limit,
        pretty=pretty,
        resource_version=resource_version,
        resource_version_match=resource_version_match,
        send_initial_events=send_initial_events,
        timeout=timeout,
        timeout_seconds=timeout_seconds,
        watch=watch,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    allow_watch_bookmarks: bool | Unset = UNSET,
    continue_: str | Unset = UNSET,
    field_selector: str | Unset = UNSET,
    label_selector: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    resource_version_match: ResourceVersionMatch | Unset = UNSET,
    send_initial_events: bool | Unset = UNSET,
    timeout: str | Unset = UNSET,
    timeout_seconds: int | Unset = UNSET,
    watch: bool | Unset = UNSET,
) -> Response[PodMetricsList | Status]:
    """List PodMetrics in all namespaces.

     Running pods selected by `labelSelector` and by `fieldSelector` on `metadata.name`,
    `metadata.namespace` or `spec.nodeName`, that have servable metrics, sorted by namespace then name.

    Args:
        allow_watch_bookmarks (bool | Unset):
        continue_ (str | Unset):
        field_selector (str | Unset):
        label_selector (str | Unset):
        limit (int | Unset):
        pretty (str | Unset):
        resource_version (str | Unset):
        resource_version_match (ResourceVersionMatch | Unset): How `resourceVersion` applies to a
            list; empty means unset.
        send_initial_events (bool | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.
        timeout_seconds (int | Unset):
        watch (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PodMetricsList | Status]
    """

    kwargs = _get_kwargs(
        allow_watch_bookmarks=allow_watch_bookmarks,
        continue_=continue_,
        field_selector=field_selector,
        label_selector=label_selector,
        limit=limit,
        pretty=pretty,
        resource_version=resource_version,
        resource_version_match=resource_version_match,
        send_initial_events=send_initial_events,
        timeout=timeout,
        timeout_seconds=timeout_seconds,
        watch=watch,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    allow_watch_bookmarks: bool | Unset = UNSET,
    continue_: str | Unset = UNSET,
    field_selector: str | Unset = UNSET,
    label_selector: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    pretty: str | Unset = UNSET,
    resource_version: str | Unset = UNSET,
    resource_version_match: ResourceVersionMatch | Unset = UNSET,
    send_initial_events: bool | Unset = UNSET,
    timeout: str | Unset = UNSET,
    timeout_seconds: int | Unset = UNSET,
    watch: bool | Unset = UNSET,
) -> PodMetricsList | Status | None:
    """List PodMetrics in all namespaces.

     Running pods selected by `labelSelector` and by `fieldSelector` on `metadata.name`,
    `metadata.namespace` or `spec.nodeName`, that have servable metrics, sorted by namespace then name.

    Args:
        allow_watch_bookmarks (bool | Unset):
        continue_ (str | Unset):
        field_selector (str | Unset):
        label_selector (str | Unset):
        limit (int | Unset):
        pretty (str | Unset):
        resource_version (str | Unset):
        resource_version_match (ResourceVersionMatch | Unset): How `resourceVersion` applies to a
            list; empty means unset.
        send_initial_events (bool | Unset):
        timeout (str | Unset): A Go duration string as printed by time.Duration.String():
            `15.012s`, `1m0.729s`, `30s`, `500ms`, `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h.
            Example: 15.012s.
        timeout_seconds (int | Unset):
        watch (bool | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PodMetricsList | Status
    """

    return (
        await asyncio_detailed(
            client=client,
            allow_watch_bookmarks=allow_watch_bookmarks,
            continue_=continue_,
            field_selector=field_selector,
            label_selector=label_selector,
            limit=limit,
            pretty=pretty,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
            send_initial_events=send_initial_events,
            timeout=timeout,
            timeout_seconds=timeout_seconds,
            watch=watch,
        )
    ).parsed
