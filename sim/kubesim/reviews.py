"""The authentication and authorization reviews of the simulated kube-apiserver (TokenReview,
SubjectAccessReview, SelfSubjectAccessReview): the `Policy` answers, in the shapes
kube-apiserver returns (201 Created, `creationTimestamp: null`); a malformed body is a 400 Status.
"""

from __future__ import annotations

from typing import Any

import orjson

from .httpserver import Request, Response
from .policy import Attributes, Policy, User
from .responses import json_response, status


def token_review(policy: Policy, request: Request) -> Response:
    """POST tokenreviews: whether the token is one of the policy's, and whose (201)."""
    try:
        doc = orjson.loads(request.body)
        token = doc["spec"]["token"]
        if not isinstance(token, str):
            raise TypeError("spec.token must be a string")
    except (ValueError, KeyError, TypeError) as exc:
        return status(400, f"TokenReview: {exc}")
    user = policy.authenticate_token(token)
    out_status: dict[str, Any]
    if user is None:
        out_status = {"authenticated": False, "user": {}, "error": "invalid bearer token"}
    else:
        out_status = {
            "authenticated": True,
            "user": user.to_json(),
            "audiences": ["https://kubernetes.default.svc.cluster.local"],
        }
    spec = {"token": token}
    if doc["spec"].get("audiences"):
        spec["audiences"] = doc["spec"]["audiences"]
    return json_response(
        {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": out_status,
        },
        201,
    )


def access_review(policy: Policy, request: Request, self_user: User | None) -> Response:
    """POST subjectaccessreviews, or selfsubjectaccessreviews for `self_user`: the policy's decision
    on the attributes in the spec (201; 422 unless exactly one kind of attributes is given)."""
    kind = "SelfSubjectAccessReview" if self_user else "SubjectAccessReview"
    try:
        doc = orjson.loads(request.body)
        spec = doc["spec"]
        if self_user is not None:
            user = self_user
        else:
            extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items()}
            user = User(spec.get("user", ""), spec.get("uid", ""), tuple(spec.get("groups") or ()), extra)
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if (ra is None) == (nra is None):
            return status(
                422,
                f'{kind}.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: '
                '"null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
                "Invalid",
            )
        if ra is not None:
            attrs = Attributes(
                user,
                ra.get("verb", ""),
                True,
                ra.get("namespace", ""),
                ra.get("group", ""),
                ra.get("version", ""),
                ra.get("resource", ""),
                ra.get("subresource", ""),
                ra.get("name", ""),
            )
        else:
            attrs = Attributes(user, nra.get("verb", ""), False, path=nra.get("path", ""))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return status(400, f"{kind}: {exc}")
    decision = policy.authorize(attrs)
    out_status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        out_status["reason"] = decision.reason
    return json_response(
        {
            "kind": kind,
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": out_status,
        },
        201,
    )
