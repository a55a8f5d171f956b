"""Reading a kubeconfig document: YAML (or JSON) through PyYAML, then typed access to its fields.

The text is parsed with PyYAML's safe loader (the libyaml C loader when PyYAML was built with it), so the
whole of YAML 1.1 works: anchors and aliases, flow and block scalars, comments, any quoting, explicit tags.
Only the first step differs from ``yaml.safe_load``: scalars are typed by the field that reads them, as
sigs.k8s.io/yaml does for kubectl's Go structs, not by the YAML resolver. So a plain (unquoted) scalar
is a :class:`Plain` string (``token: 0123`` is ``"0123"``, not 83), a quoted one a ``str``, and plain
``null``/``~``/empty is ``None``. Booleans are plain YAML 1.1 words (``true``, ``yes``, ``on`` ...);
a quoted ``"true"`` is a string, and a boolean field refuses it (as kubectl does).

Refused with :class:`ConfigError` naming the file and line: YAML syntax errors, more than one document,
a duplicate key in a mapping. A JSON document that YAML refuses (a surrogate-pair escape such as
``"\\ud83d\\ude00"``, which Python's ``json.dumps`` writes) is read as JSON, typed as JSON.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from .connection import ConfigError

__all__ = [
    "Plain",
    "as_bool",
    "as_list",
    "as_map",
    "as_str",
    "b64",
    "load_document",
    "read_file",
    "resolve_plain",
]


class Plain(str):
    """A plain (unquoted) scalar; quoted scalars are ``str``. Only plain scalars can be booleans."""

    __slots__ = ()


_PLAIN_TAG: Final = "tag:k8s-metrics:plain"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_NULLS: Final = frozenset({"null", "Null", "NULL", "~", ""})
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader, with plain scalars left untyped and duplicate keys refused."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:  # a plain scalar without an explicit tag
            if value == "<<":
                return _MERGE_TAG
            return _NULL_TAG if value in _NULLS else _PLAIN_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # "<<: *base": merged below, where explicit keys win
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]


def _construct_plain(loader: yaml.BaseLoader, node: yaml.Node) -> Plain:
    assert isinstance(node, yaml.ScalarNode)
    return Plain(node.value)


_Loader.add_constructor(_PLAIN_TAG, _construct_plain)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)


def load_document(text: str, source: str) -> object:
    """Parse one YAML (or JSON) document into dicts, lists, ``str``/:class:`Plain` and ``None``.

    Raises :class:`ConfigError` naming ``source`` and the line for anything that is not YAML, for a
    second document and for a duplicate key.
    """
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        if text.lstrip().startswith("{"):
            # JSON escapes a character outside the BMP as a surrogate pair, which YAML refuses.
            with contextlib.suppress(ValueError):
                return json.loads(text)
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}: line {mark.line + 1}" if mark is not None else source
        problem = exc.problem or "invalid YAML"
        if "expected a single document" in str(exc):
            problem = "more than one YAML document"
        raise ConfigError(f"{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not YAML: {exc}") from None


def resolve_plain(node: object) -> object:
    """The value as ``yaml.safe_load`` would type it (YAML 1.1 schema): for data passed on to a plugin
    as JSON (a cluster's exec extension ``config``), where no field type decides."""
    if isinstance(node, dict):
        return {k: resolve_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_plain(v) for v in node]
    if isinstance(node, Plain):
        typing = yaml.SafeLoader("")
        tag = typing.resolve(yaml.ScalarNode, str(node), (True, False))  # type: ignore[no-untyped-call]
        return typing.construct_object(yaml.ScalarNode(tag, str(node)))
    return node


# --------------------------------------------------------------------------------------------------
# Typed access to the parsed document
# --------------------------------------------------------------------------------------------------

_TRUE: Final = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON"})
_FALSE: Final = frozenset({"false", "False", "FALSE", "no", "No", "NO", "n", "N", "off", "Off", "OFF"})


def as_map(node: object, where: str) -> dict[str, object]:
    """A mapping (None reads as empty). Raises :class:`ConfigError` naming ``where`` otherwise."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return node


def as_list(node: object, where: str) -> list[object]:
    """A list (None reads as empty). Raises :class:`ConfigError` naming ``where`` otherwise."""
    if node is None:
        return []
    if not isinstance(node, list):
        raise ConfigError(f"{where}: expected a list")
    return node


def as_str(node: Mapping[str, object], key: str, where: str) -> str | None:
    """A string field; absent, null and empty all mean "not set", as in client-go."""
    value = node.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected a string")
    return str(value)


def as_bool(node: Mapping[str, object], key: str, where: str) -> bool:
    """A boolean field: a plain YAML 1.1 boolean word (or JSON ``true``/``false``); absent is False."""
    value = node.get(key)
    if value is None:
        return False
    if isinstance(value, bool):  # an explicit !!bool tag
        return value
    if isinstance(value, Plain) and value in _TRUE:
        return True
    if isinstance(value, Plain) and value in _FALSE:
        return False
    raise ConfigError(f"{where}.{key}: expected true or false, got {value!r}")


def b64(value: str, where: str) -> bytes:
    """Decode base64 data (whitespace ignored). Raises :class:`ConfigError` naming ``where``."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: not valid base64") from None


def read_file(path: Path, where: str) -> bytes:
    """The bytes of ``path``. Raises :class:`ConfigError` naming ``where`` and the file."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {str(path)!r}: {exc.strerror or exc}") from exc
