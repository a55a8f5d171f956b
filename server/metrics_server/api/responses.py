"""Building responses in the negotiated encoding: Status errors, documents, the path index.

The server builds Status and discovery bodies as JSON (`api.status`, `api.discovery`); when the
client negotiated YAML or protobuf, `encoded` re-encodes them (`api.yamlenc`, `api.protobuf`).
`index` is the library's answer to `/` and to unknown paths outside the API group: the sorted list
of the server's paths, indented (200 for `/`, 404 elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from quart import Response

from metrics_server.api import negotiate as neg
from metrics_server.api import protobuf, status, yamlenc


def encoded(json_body: bytes, rep: str) -> tuple[bytes, str]:
    """(body, Content-Type) of a JSON document in the representation `rep` (JSON for the rest)."""
    if rep == neg.YAML:
        return yamlenc.from_json(json_body), yamlenc.CONTENT_TYPE
    if rep == neg.PROTOBUF:
        body = protobuf.document(orjson.loads(json_body))
        if body is not None:
            return body, protobuf.CONTENT_TYPE
    return json_body, status.CONTENT_TYPE


def status_response(json_body: bytes, code: int, rep: str = neg.JSON) -> Response:
    """A Status error in the client's encoding (JSON when it asked for a Table or nothing usable)."""
    body, content_type = encoded(json_body, rep)
    return Response(body, status=code, content_type=content_type)


def without_content_type(response: Response) -> Response:
    """`response` with no Content-Type (a 304, an empty 406): what the library sends there."""
    del response.headers["Content-Type"]
    return response


def index(paths: Iterable[str], code: int) -> Response:
    """The `{"paths": [...]}` listing (Go's `json.MarshalIndent`, sorted byte-wise)."""
    body = orjson.dumps({"paths": sorted(set(paths))}, option=orjson.OPT_INDENT_2)
    return Response(body, status=code, content_type="application/json")
