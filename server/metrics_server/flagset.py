"""Command-line flags as Go's pflag parses them, declared by the component that owns them.

A component declares its flags as fields of its frozen options dataclass:

    @dataclass(frozen=True, slots=True)
    class KubeletClientConfig:
        FLAG_GROUP: ClassVar[str] = KUBELET_CLIENT
        port: int = flag("--kubelet-port", INT, "10250", "The port to use to connect to Kubelets.")

`flag(name, kind, default, help)` takes the default as Go would print it (`"10250"`, `"1m0s"`,
`"x-remote-user"`); the field's default is that text parsed by `kind` (then `to`, e.g. `seconds`),
and `--help` shows it as pflag does (`(default 10250)`). The class's `validate()` (the component's
own rules) runs after parsing; `cli.py` only lists the classes. So adding a flag is one field in
the owning class, plus whatever the component does with it.

To add a flag: add a field with `flag(...)` to the options class of the component that uses it
(`scrape.config.KubeletClientConfig` for the kubelet client, `options.ServerOptions` for the
server's own flags, `auth.servingoptions.SecureServingOptions` for serving, ...), put its rules
in that class's `validate()` (raising an error whose `flag` names it), and use the field where
the component is built. A new component's options class is added to `options.Options` (one
field); `--help`, parsing, the docs table check (tests/deploy/test_operations_doc.py) and the
walk over metrics-server's flags (tests/server/test_flags.py) pick it up from there. A flag of
ours (not metrics-server's) also gets a row in docs/operations.md, status `extra`.

A flag with `ignored="<what it would have done>"` is accepted (its value is still checked as
metrics-server checks it) and reported once at start-up; `--help` marks it `[ignored]`.

Syntax (pflag's): `--name=value`, `--name value` (not for booleans: `--flag false` would be a
stray argument), booleans as `--name` or `--name=true|false` (Go's `strconv.ParseBool`), a
shorthand as `-l value`, `-l=value` or `-lvalue`, `--` ends the flags. A list flag (`strings`)
is comma-separated with CSV quoting, repeatable; its first use replaces the default. A non-list
flag given twice keeps the last value. Unknown flags and stray arguments raise `FlagError`
(metrics-server ignores stray arguments, so `--kubelet-insecure-tls false` silently means true
there; here it is refused). Files (`FILE`) must exist when given.

Why not argparse: it cannot express pflag's booleans (`nargs="?"` swallows the next argument),
CSV lists, or pflag's help layout, which `--help` reproduces group by group.
"""

from __future__ import annotations

import csv
import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from k8s_metrics.durations import parse_duration_ns
from k8s_metrics.quantity import parse_quantity

NS_PER_SECOND: Final = 1_000_000_000

# Upstream's help groups, in upstream's order.
METRICS_SERVER: Final = "Metrics server flags"
GENERIC: Final = "Generic flags"
KUBELET_CLIENT: Final = "Kubelet client flags"
SECURE_SERVING: Final = "Apiserver secure serving flags"
AUTHENTICATION: Final = "Apiserver authentication flags"
AUTHORIZATION: Final = "Apiserver authorization flags"
AUDIT: Final = "Apiserver audit log flags"
FEATURES: Final = "Features flags"
LOGGING: Final = "Logging flags"
GROUPS: Final = (
    METRICS_SERVER,
    GENERIC,
    KUBELET_CLIENT,
    SECURE_SERVING,
    AUTHENTICATION,
    AUTHORIZATION,
    AUDIT,
    FEATURES,
    LOGGING,
)

_METADATA_KEY = "metrics_server.flag"


class FlagError(ValueError):
    """A flag is unknown, malformed, or contradicts another. `flag` names it; so does the message
    (it is prefixed with `flag: ` unless it already contains the name)."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(message if flag in message else f"{flag}: {message}")
        self.flag = flag


# --- Go value syntax -----------------------------------------------------------------------------


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


_GO_OCTAL = re.compile(r"[+-]?0[0-7_]+")


def _parse_int(text: str) -> int:
    """`strconv.ParseInt(text, 0, 64)`: decimal, 0x/0o/0b prefixes, a leading 0 for octal."""
    try:
        value = int(text, 8) if _GO_OCTAL.fullmatch(text) else int(text, 0)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def _parse_level(text: str) -> int:
    """klog's `Level`: `strconv.ParseUint(text, 10, 32)`."""
    if not text.isdigit() or int(text) >= 2**32:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    return int(text)


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None


def _parse_duration(text: str) -> int:
    try:
        return parse_duration_ns(text)
    except ValueError:
        raise ValueError(f'time: invalid duration "{text}"') from None


def _parse_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f'failed to parse IP: "{text}"') from None


def _parse_file(text: str) -> str:
    if text and not os.path.isfile(text):
        raise ValueError(f"no such file {text!r}")
    return text


def _parse_quantity(text: str) -> str:
    parse_quantity(text)  # raises ValueError with the reason
    return text


def split_csv(text: str) -> tuple[str, ...]:
    """pflag's string-slice syntax: one CSV record (quotes allowed); an empty value is no items."""
    if text == "":
        return ()
    try:
        [record] = list(csv.reader([text], strict=True))
    except (csv.Error, ValueError) as exc:
        raise ValueError(f"invalid CSV list {text!r}: {exc}") from None
    return tuple(record)


_MODULE_LEVEL = re.compile(r"[^=,]+=\d+")


def _parse_vmodule(text: str) -> str:
    for item in text.split(",") if text else ():
        if not _MODULE_LEVEL.fullmatch(item):
            raise ValueError(f'"{item}" does not have the pattern=N format')
    return text


_GATE = re.compile(r"(?:[^:=,]+:)?[^:=,]+=(?i:true|false|1|0|t|f)")


def _parse_gates(text: str) -> tuple[str, ...]:
    items = split_csv(text)
    for item in items:
        if not _GATE.fullmatch(item.strip()):
            raise ValueError(f"invalid feature gate {item!r}: want [component:]name=true|false")
    return items


def _parse_named_cert_key(text: str) -> str:
    files, _, _domains = text.partition(":")
    if len(files.split(",")) != 2 or not all(files.split(",")):
        raise ValueError('expected comma-separated key and certificate file paths, e.g. "foo.crt,foo.key"')
    return text


@dataclass(frozen=True, slots=True)
class Kind:
    """A Go flag value type: its name in `--help`, and how a value parses."""

    name: str
    parse: Callable[[str], Any]
    is_list: bool = False
    is_bool: bool = False
    quote_default: bool = False
    zero: Any = ""
    """The value of an empty default (Go's zero value)."""
    empty_default: str = ""
    """How `--help` shows an empty default (pflag shows `[]` for some types)."""


BOOL: Final = Kind("", _parse_bool, is_bool=True, zero=False)
INT: Final = Kind("int", _parse_int, zero=0)
FLOAT: Final = Kind("float", _parse_float, zero=0.0)
FLOAT32: Final = Kind("float32", _parse_float, zero=0.0)
STRING: Final = Kind("string", str, quote_default=True)
FILE: Final = Kind("string", _parse_file, quote_default=True)
"""A path that must name an existing file when non-empty."""
STRINGS: Final = Kind("strings", split_csv, is_list=True, zero=())
DURATION: Final = Kind("duration", _parse_duration, zero=0)
"""Parsed to integer nanoseconds (see `seconds` for float seconds)."""
IP: Final = Kind("ip", _parse_ip)
QUANTITY: Final = Kind("quantity", _parse_quantity)
LEVEL: Final = Kind("Level", _parse_level, zero=0)
VMODULE: Final = Kind("pattern=N,...", _parse_vmodule)
FEATURE_GATES: Final = Kind("colonSeparatedMultimapStringString", _parse_gates, is_list=True, zero=())
NAMED_CERT_KEY: Final = Kind(
    "namedCertKey", lambda text: (_parse_named_cert_key(text),), is_list=True, zero=(), empty_default="[]"
)


def seconds(ns: int) -> float:
    """`to=` for a duration field held in float seconds."""
    return ns / NS_PER_SECOND


def none_if_empty(text: str) -> str | None:
    """`to=` for an optional path held as None when not given."""
    return text or None


# --- declaration --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag: see `flag()`. `field` is the attribute of the owning class it sets."""

    name: str
    kind: Kind
    default: str
    help: str
    shorthand: str = ""
    group: str = ""
    ignored: str = ""
    same_as_ours: tuple[str, ...] = ()
    to: Callable[[Any], Any] | None = None
    check: Callable[[Any], str | None] | None = None
    field: str = ""
    owner: type | None = None

    def convert(self, text: str, previous: Any = None) -> Any:
        """The field value for `text` (appended to `previous` for a repeated list flag).
        Raises FlagError in pflag's words."""
        try:
            value = self.kind.parse(text)
        except ValueError as exc:
            message = f'invalid argument "{text}" for "{self.spelled}" flag: {exc}'
            raise FlagError(self.name, message) from None
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise FlagError(self.name, problem)
        if self.kind.is_list and previous is not None:
            value = (*previous, *value)
        return self.to(value) if self.to is not None else value

    @property
    def spelled(self) -> str:
        """How pflag names it in errors: `-v, --v` with a shorthand, else `--name`."""
        return f"-{self.shorthand}, {self.name}" if self.shorthand else self.name

    def default_value(self) -> Any:
        """The field's default: `default` parsed, or the kind's zero value when it is empty."""
        if self.default == "":
            return self.to(self.kind.zero) if self.to is not None else self.kind.zero
        return self.convert(self.default)

    def usage_text(self) -> str:
        """The help text with pflag's `(default ...)` suffix and the `[ignored]` mark."""
        text = self.help
        if self.ignored:
            text = f"[ignored: {self.ignored}] {text}"
        if self.default and self.default not in ("0", "false", "0s"):
            shown = f'"{self.default}"' if self.kind.quote_default else self.default
            if self.kind.is_list:
                shown = f"[{self.default}]"
            text = f"{text} (default {shown})"
        elif not self.default and self.kind.empty_default:
            text = f"{text} (default {self.kind.empty_default})"
        return text


def flag(
    name: str,
    kind: Kind,
    default: str,
    help: str,
    *,
    shorthand: str = "",
    group: str = "",
    ignored: str = "",
    same_as_ours: Iterable[str] = (),
    to: Callable[[Any], Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field that is the flag `name` (see the module docstring).

    `group` overrides the class's `FLAG_GROUP`. `ignored` marks an accepted flag without effect,
    saying what it would have done; values in `same_as_ours` are what this server does anyway,
    so giving them is not reported. `check(value)` returns a problem (refused, naming the flag).
    """
    spec = Flag(
        name=name,
        kind=kind,
        default=default,
        help=help,
        shorthand=shorthand,
        group=group,
        ignored=ignored,
        same_as_ours=tuple(same_as_ours),
        to=to,
        check=check,
    )
    return field(default=spec.default_value(), metadata={_METADATA_KEY: spec})


def flags_of(owner: type) -> list[Flag]:
    """The flags declared on a dataclass, each bound to its field, owner and group."""
    group = getattr(owner, "FLAG_GROUP", "")
    out = []
    for f in dataclasses.fields(owner):
        spec = f.metadata.get(_METADATA_KEY)
        if isinstance(spec, Flag):
            out.append(dataclasses.replace(spec, field=f.name, owner=owner, group=spec.group or group))
    return out


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """The result of `parse`: one instance per owner class, and what was given."""

    instances: Mapping[type, Any]
    given: tuple[str, ...]
    """Long names of the flags given, first use order, each once."""
    ignored: tuple[Flag, ...]
    """Ignored flags given with a value that would have changed something."""

    def get(self, owner: type[Any]) -> Any:
        return self.instances[owner]


class FlagSet:
    """Every flag of the given owner classes (no duplicates allowed)."""

    def __init__(self, owners: Sequence[type]) -> None:
        self.owners = tuple(owners)
        self.flags: dict[str, Flag] = {}
        self.shorthands: dict[str, Flag] = {}
        for owner in self.owners:
            for spec in flags_of(owner):
                if spec.name in self.flags:
                    raise ValueError(f"flag {spec.name} is declared twice")
                if spec.group not in GROUPS:
                    raise ValueError(f"flag {spec.name} has no known group ({spec.group!r})")
                self.flags[spec.name] = spec
                if spec.shorthand:
                    self.shorthands[spec.shorthand] = spec

    def __iter__(self) -> Iterator[Flag]:
        return iter(self.flags.values())

    def _tokens(self, argv: Sequence[str]) -> Iterator[tuple[Flag, str]]:
        """(flag, value text) per use, pflag's syntax."""
        args = list(argv)
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                if i < len(args):
                    raise FlagError(args[i], f"unexpected argument {args[i]!r}: only flags are taken")
                return
            if arg.startswith("--"):
                name, has_value, value = arg.partition("=")
                spec = self.flags.get(name)
                if spec is None:
                    raise FlagError(name, f"unknown flag: {name}")
            elif arg.startswith("-") and len(arg) > 1:
                spec = self.shorthands.get(arg[1])
                if spec is None:
                    raise FlagError(arg, f"unknown shorthand flag: {arg[1]!r} in {arg}")
                rest = arg[2:]
                has_value = "=" if rest else ""
                value = rest.removeprefix("=")
            else:
                raise FlagError(
                    arg,
                    f"unexpected argument {arg!r}: this command takes only flags "
                    "(a boolean takes its value as --flag=false, not --flag false)",
                )
            if not has_value:
                if spec.kind.is_bool:
                    value = "true"
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise FlagError(spec.name, f"flag needs an argument: {spec.spelled}")
            yield spec, value

    def parse(self, argv: Sequence[str]) -> Parsed:
        """Parse `argv` into one instance per owner (unset fields keep their defaults).

        Raises FlagError for unknown flags, stray arguments and malformed values. Each owner's
        `validate()` is not called here."""
        values: dict[str, Any] = {}
        last_text: dict[str, str] = {}
        for spec, text in self._tokens(argv):
            values[spec.name] = spec.convert(text, values.get(spec.name))
            last_text[spec.name] = text
        instances: dict[type, Any] = {}
        for owner in self.owners:
            kwargs = {spec.field: values[spec.name] for spec in flags_of(owner) if spec.name in values}
            instances[owner] = owner(**kwargs)
        ignored = tuple(
            self.flags[name]
            for name, text in last_text.items()
            if self.flags[name].ignored and text not in self.flags[name].same_as_ours
        )
        return Parsed(instances, tuple(last_text), ignored)

    # --- help

    def usage(self, header: str) -> str:
        """`--help`: `header`, then every group in upstream's order, flags sorted by name, in
        pflag's layout (help text aligned per group, continuation lines indented to it)."""
        out = [header]
        for group in GROUPS:
            specs = sorted((s for s in self if s.group == group), key=lambda s: s.name)
            if not specs:
                continue
            lines = []
            for spec in specs:
                head = f"  -{spec.shorthand}, {spec.name}" if spec.shorthand else f"      {spec.name}"
                if spec.kind.name:
                    head += f" {spec.kind.name}"
                lines.append((head, spec.usage_text()))
            width = max(len(head) for head, _ in lines)
            out.append(f"{group}:\n")
            for head, text in lines:
                indent = "\n" + " " * (width + 3)
                out.append(f"{head.ljust(width)}   {indent.join(text.splitlines())}")
            out.append("")
        return "\n".join(out) + "\n"
