"""The ``/`` filter language: what an operator types and what it selects, never eval."""

from __future__ import annotations

import pytest

from pipeconsole.query import MAX_PATTERN, QueryError, parse

DEVICES = [
    {"id": "ingest-01", "stage": "ingest", "health": "healthy", "lag": 0, "stale": False},
    {"id": "transcode-03", "stage": "transcode", "health": "failing", "lag": 120, "stale": False},
    {"id": "package-02", "stage": "package", "health": "degraded", "lag": 30.5, "stale": True},
    {"id": "edge-09", "stage": "edge", "health": "unknown", "lag": None, "stale": True},
]
FIELDS = ["id", "stage", "health", "lag", "stale"]


def ids(query: str) -> list[str]:
    q = parse(query, fields=FIELDS)
    return [str(d["id"]) for d in DEVICES if q.matches(d)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["ingest-01", "transcode-03", "package-02", "edge-09"]),
        ("TRANS", ["transcode-03"]),
        ("health=failing", ["transcode-03"]),
        ("health == FAILING", ["transcode-03"]),
        ("health!=healthy", ["transcode-03", "package-02", "edge-09"]),
        ("lag>100", ["transcode-03"]),
        ("lag >= 30.5 and stale=true", ["package-02"]),
        ("lag<1 or stage=edge", ["ingest-01", "edge-09"]),
        ("stage in (transcode, package)", ["transcode-03", "package-02"]),
        ("not stale=true", ["ingest-01", "transcode-03"]),
        ("!healthy", ["transcode-03", "package-02", "edge-09"]),
        ("not (health=healthy or stale=true)", ["transcode-03"]),
        ("id ~ '^(ingest|edge)-0[19]$'", ["ingest-01", "edge-09"]),
        ("id !~ 'ge-0'", ["ingest-01", "transcode-03"]),
        ("stale = true package", ["package-02"]),
        ("'code-0' && lag > 0", ["transcode-03"]),
    ],
)
def test_operator_queries_select_the_expected_devices(query: str, expected: list[str]) -> None:
    assert ids(query) == expected


def test_missing_value_never_matches_a_comparison() -> None:
    assert ids("lag<1000") == ["ingest-01", "transcode-03", "package-02"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("health=", "expected a value, found end of query"),
        ("(health=failing", "expected ')'"),
        ("helth=failing", "did you mean 'health'"),
        ("and lag>1", "needs an expression on its left"),
        ("lag>1)", "unexpected ')'"),
        ("id ~ '(a+)+'", "nested quantifiers"),
        ("id ~ '[unclosed'", "bad regular expression"),
        ("id ~ '" + "a" * (MAX_PATTERN + 1) + "'", "longer than"),
        ("(" * 40 + "x" + ")" * 40, "nested too deeply"),
        ("x" * 2000, "query longer than"),
    ],
)
def test_bad_queries_get_a_clear_error(query: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        parse(query, fields=FIELDS)
    assert message in str(err.value)
    assert "column" in str(err.value)


def test_query_is_interpreted_never_evaluated() -> None:
    q = parse("__import__('os').system('false')")
    assert not q.matches({"id": "x"})  # it is just words and parentheses


CHOICES = {"health": ("HEALTHY", "DEGRADED", "FAILING", "UNKNOWN"), "stale": ("true", "false")}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("health=failng", "health 'failng' is not one of healthy, degraded, failing, unknown; "
         "did you mean 'failing'?"),
        ("health != up", "health 'up' is not one of"),
        ("health in (failing, dead)", "health 'dead' is not one of"),
        ("stale=yes", "stale 'yes' is not one of true, false"),
        ("Health=Failng", "health 'Failng' is not one of"),
    ],
)  # fmt: skip
def test_a_value_a_field_cannot_hold_is_an_error_not_an_empty_result(
    query: str, message: str
) -> None:
    with pytest.raises(QueryError) as err:
        parse(query, fields=FIELDS, choices=CHOICES)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("health=FAILING", ["transcode-03"]),
        ("health in (failing, degraded)", ["transcode-03", "package-02"]),
        ("health ~ 'fail|degr'", ["transcode-03", "package-02"]),  # a pattern is not a value
        ("health > f", ["ingest-01", "transcode-03", "edge-09"]),  # text order: no choice
        ("stale=TRUE", ["package-02", "edge-09"]),
        ("stage=nowhere", []),  # no choices for stage: anything goes
    ],
)
def test_values_among_the_choices_select_as_before(query: str, expected: list[str]) -> None:
    q = parse(query, fields=FIELDS, choices=CHOICES)
    assert [str(d["id"]) for d in DEVICES if q.matches(d)] == expected
