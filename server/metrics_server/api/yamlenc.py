"""`application/yaml`: the library's YAML, which is its JSON converted (`sigs.k8s.io/yaml`, go-yaml v2).

So a YAML body is made from the JSON body the server already has: keys sorted, block style, two
spaces, sequences not indented under their key, lines folded at 80 columns. go-yaml and PyYAML's
emitter are both ports of libyaml, so they choose the same quoting for a string, except for one
rule this module adds: a string that would read back as another type (`"1"`, `""`, `"true"`, a
timestamp) is double-quoted, where PyYAML single-quotes it.

YAML is for humans and tools (`kubectl` itself asks for JSON and converts); large lists in YAML
cost ~10x their JSON encoding.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

CONTENT_TYPE = "application/yaml"

_Base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_Base):  # type: ignore[misc]
    pass


def _str(dumper: Any, value: str) -> Any:
    resolved = dumper.resolve(yaml.ScalarNode, value, (True, False))
    style = '"' if resolved != "tag:yaml.org,2002:str" else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def from_json(body: bytes) -> bytes:
    """The YAML form of a JSON document."""
    text: str = yaml.dump(
        orjson.loads(body),
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
        width=80,
    )
    return text.encode()
