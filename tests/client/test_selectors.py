"""labels.Parse / fields.ParseSelector grammar, matching and the library's error texts."""

from __future__ import annotations

import pytest

from k8s_metrics.fieldselectors import FieldRequirement, FieldSelector, check_fields, parse_field_selector
from k8s_metrics.selectors import Requirement, SelectorError, parse_label_selector

NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("", ()),
        ("   ", ()),
        ("a=b", (Requirement("a", "=", ("b",)),)),
        ("a==b", (Requirement("a", "==", ("b",)),)),
        ("a!=b", (Requirement("a", "!=", ("b",)),)),
        ("a = b ,  c", (Requirement("a", "=", ("b",)), Requirement("c", "exists", ()))),
        ("!x", (Requirement("x", "!", ()),)),
        ("x=", (Requirement("x", "=", ("",)),)),
        ("x in (b,a)", (Requirement("x", "in", ("a", "b")),)),
        ("x notin (a)", (Requirement("x", "notin", ("a",)),)),
        ("x in ()", (Requirement("x", "in", ("",)),)),
        ("x in (a,,b)", (Requirement("x", "in", ("", "a", "b")),)),
        ("x in (,a)", (Requirement("x", "in", ("", "a")),)),
        ("x in (a,)", (Requirement("x", "in", ("", "a")),)),
        ("x in (in,notin)", (Requirement("x", "in", ("in", "notin")),)),
        ("k>5,k<10", (Requirement("k", "gt", ("5",)), Requirement("k", "lt", ("10",)))),
        (
            "app in (x,y),tier notin (z),!foo,bar",
            (
                Requirement("app", "in", ("x", "y")),
                Requirement("bar", "exists", ()),
                Requirement("foo", "!", ()),
                Requirement("tier", "notin", ("z",)),
            ),
        ),
        ("example.com/key=v", (Requirement("example.com/key", "=", ("v",)),)),
    ],
)
def test_label_selector_grammar(text: str, requirements: tuple[Requirement, ...]) -> None:
    assert parse_label_selector(text).requirements == requirements


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("=x", "found '=', expected: !, identifier, or 'end of string'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in in", "unable to parse requirement: found 'in' expected: '('"),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a in (x,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("x=(", "unable to parse requirement: found '(', expected: identifier"),
        ("!!x", "unable to parse requirement: found '!', expected: identifier"),
        (
            "k>a",
            'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("k>-1", f'unable to parse requirement: values[0][k]: Invalid value: "-1": {VALUE_RULE}'),
        (
            "k>-a",
            "unable to parse requirement: [values[0]: Invalid value: \"-a\": for 'Gt', 'Lt' operators, "
            f'the value must be an integer, values[0][k]: Invalid value: "-a": {VALUE_RULE}]',
        ),
        ("-bad", f'unable to parse requirement: <nil>: Invalid value: "-bad": name part {NAME_RULE}'),
        (
            "a/b/c",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a valid label key '
            f"{NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "/x",
            'unable to parse requirement: <nil>: Invalid value: "/x": prefix part must be non-empty',
        ),
        (
            "Ab/c",
            'unable to parse requirement: <nil>: Invalid value: "Ab/c": prefix part a lowercase RFC 1123 '
            "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and "
            "end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            "p/",
            f'unable to parse requirement: <nil>: Invalid value: "p/": name part must be non-empty; '
            f"name part {NAME_RULE}",
        ),
        (
            "k" * 64,
            f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": name part must be no '
            f"more than 63 bytes",
        ),
        (
            "a=" + "v" * 64,
            f'unable to parse requirement: values[0][a]: Invalid value: "{"v" * 64}": must be no more '
            f"than 63 bytes",
        ),
        ('a="q"', f'unable to parse requirement: values[0][a]: Invalid value: "\\"q\\"": {VALUE_RULE}'),
    ],
)
def test_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x,y)", {"a": "y"}, True),
        ("a notin (x,y)", {"a": "y"}, False),
        ("a notin (x,y)", {}, True),
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("!a", {"a": "1"}, False),
        ("a>5", {"a": "6"}, True),
        ("a>5", {"a": "5"}, False),
        ("a>5", {"a": "x"}, False),
        ("a>5", {}, False),
        ("a<5", {"a": "-3"}, True),
        ("a=b,c", {"a": "b"}, False),
        ("a=b,c", {"a": "b", "c": "d"}, True),
    ],
)
def test_label_selector_matching(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("", ()),
        ("metadata.name=a", (FieldRequirement("metadata.name", "=", "a"),)),
        ("metadata.name==a", (FieldRequirement("metadata.name", "=", "a"),)),
        (
            "metadata.name!=pod-2,metadata.namespace=default",
            (
                FieldRequirement("metadata.name", "!=", "pod-2"),
                FieldRequirement("metadata.namespace", "=", "default"),
            ),
        ),
        ("b=1,a=2,", (FieldRequirement("a", "=", "2"), FieldRequirement("b", "=", "1"))),
        ("a=x\\,y\\=z\\\\", (FieldRequirement("a", "=", "x,y=z\\"),)),
        ("a!=", (FieldRequirement("a", "!=", ""),)),
    ],
)
def test_field_selector_grammar(text: str, requirements: tuple[FieldRequirement, ...]) -> None:
    assert parse_field_selector(text).requirements == requirements


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bad", "invalid selector: 'bad'; can't understand 'bad'"),
        ("a=1,bad", "invalid selector: 'a=1,bad'; can't understand 'bad'"),
        ("a=b=c", "invalid field selector: unescapedRune character in value: 61"),
        ("a==b,c", "invalid selector: 'a==b,c'; can't understand 'c'"),
        ("a=\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=x\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_field_selector(text)
    assert str(err.value) == message


def test_field_selector_matching_and_exact() -> None:
    selector = parse_field_selector("metadata.name=a,metadata.namespace!=kube-system")
    values = {"metadata.name": "a", "metadata.namespace": "default"}
    assert selector.matches(lambda f: values.get(f, ""))
    assert not selector.matches(lambda f: {"metadata.name": "a", "metadata.namespace": "kube-system"}[f])
    assert selector.exact("metadata.name") == "a"
    assert selector.exact("metadata.namespace") is None
    assert FieldSelector(()).matches(lambda f: "")


def test_check_fields_names_the_first_unknown_field() -> None:
    check_fields(parse_field_selector("metadata.name=a"), ["metadata.name", "metadata.namespace"])
    with pytest.raises(SelectorError) as err:
        check_fields(
            parse_field_selector("status.phase=Running,spec.nodeName=x"),
            ["metadata.name", "metadata.namespace"],
        )
    assert (
        str(err.value)
        == '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
