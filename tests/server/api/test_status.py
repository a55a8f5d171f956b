"""Status bodies, byte for byte as the apiserver library encodes them."""

from __future__ import annotations

from metrics_server.api import status


def test_not_found_variants() -> None:
    assert status.not_found("podmetrics", "default/nginx", group="metrics.k8s.io") == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"podmetrics.metrics.k8s.io \\"default/nginx\\" not found","reason":"NotFound",'
        b'"details":{"name":"default/nginx","group":"metrics.k8s.io","kind":"podmetrics"},"code":404}\n'
    )
    assert status.not_found("node", "n1") == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"node \\"n1\\" '
        b'not found",'
        b'"reason":"NotFound","details":{"name":"n1","kind":"node"},"code":404}\n'
    )


def test_simple_errors() -> None:
    head = b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    assert status.path_not_found() == head + (
        b'"message":"the server could not find the requested resource","reason":"NotFound",'
        b'"details":{},"code":404}\n'
    )
    assert status.unauthorized() == head + b'"message":"Unauthorized","reason":"Unauthorized","code":401}\n'
    assert status.bad_request("x") == head + b'"message":"x","reason":"BadRequest","code":400}\n'
    assert status.method_not_allowed() == head + (
        b'"message":"the server does not allow this method on the requested resource",'
        b'"reason":"MethodNotAllowed","details":{},"code":405}\n'
    )
    assert status.not_acceptable(["application/json", "application/yaml"]) == (
        b'{\n  "kind": "Status",\n  "apiVersion": "v1",\n  "metadata": {},\n  "status": "Failure",\n'
        b'  "message": "only the following media types are accepted: application/json, application/yaml",\n'
        b'  "reason": "NotAcceptable",\n  "code": 406\n}'
    )
    assert (
        status.service_unavailable("busy")
        == head + b'"message":"busy","reason":"ServiceUnavailable","code":503}\n'
    )
    assert status.internal_error("boom <&>") == head + (
        b'"message":"Internal error occurred: boom \\u003c\\u0026\\u003e","reason":"InternalError",'
        b'"details":{"causes":[{"message":"boom \\u003c\\u0026\\u003e"}]},"code":500}\n'
    )


def test_watch_not_supported() -> None:
    assert status.method_not_supported("pods", "metrics.k8s.io", "watch") == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"watch is not supported on resources of kind \\"pods.metrics.k8s.io\\"",'
        b'"reason":"MethodNotAllowed","details":{"group":"metrics.k8s.io","kind":"pods"},"code":405}\n'
    )


def test_invalid_list_options() -> None:
    body = status.invalid(
        "ListOptions",
        "meta.k8s.io",
        "",
        [
            status.FieldError(
                "FieldValueForbidden",
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            )
        ],
    )
    assert body == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"ListOptions.meta.k8s.io \\"\\" is invalid: resourceVersionMatch: Forbidden: '
        b'resourceVersionMatch is forbidden unless resourceVersion is provided","reason":"Invalid",'
        b'"details":{"group":"meta.k8s.io","kind":"ListOptions","causes":[{"reason":"FieldValueForbidden",'
        b'"message":"Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",'
        b'"field":"resourceVersionMatch"}]},"code":422}\n'
    )
