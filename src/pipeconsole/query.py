"""The ``/`` filter language: a tiny, safe expression language over flat records.

Used by every console view (``/``) and by headless scripts. Operator input is parsed by a
hand-written tokenizer and recursive-descent parser into a small tree that is *interpreted*
over a record; nothing is ever passed to ``eval`` (kafka-ui's Groovy filters were a remote
code execution, GHSL-2023-229).

Grammar (keywords are case-insensitive)::

    query      := or_expr
    or_expr    := and_expr ( ("or" | "||") and_expr )*
    and_expr   := not_expr ( ("and" | "&&")? not_expr )*     # juxtaposition means "and"
    not_expr   := ("not" | "!") not_expr | primary
    primary    := "(" query ")" | comparison | word
    comparison := FIELD op value | FIELD "in" "(" value ("," value)* ")"
    op         := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"
    value      := NUMBER | 'quoted' | "quoted" | WORD

Examples: ``transcode``, ``health=failing``, ``stage in (transcode, package) and lag>100``,
``name ~ '^enc-0[1-3]$'``, ``!healthy``, ``not (health=healthy or stale=true)``.

* A bare word matches, case-insensitively, as a substring of the record's *text fields*
  (by default every string value).
* ``=``/``!=`` compare numbers numerically, booleans as ``true``/``false`` and text
  case-insensitively; ``<``/``>`` compare numbers, or text when either side is not a number.
* ``~``/``!~`` are regular-expression searches, case-insensitive, guarded: the pattern is at
  most :data:`MAX_PATTERN` characters, nested quantifiers such as ``(a+)+`` (the classic
  catastrophic-backtracking shape) are refused, and only the first :data:`MAX_SUBJECT`
  characters of a value are searched, which bounds the time a match can take.
* A missing field, or ``None``, never matches a comparison (and so ``!=`` on it is true).
* A field with a fixed set of values (``choices``: health, state, ``true``/``false``) refuses
  any other in ``=``, ``!=`` and ``in``: ``health=failng`` is an error with a suggestion, not
  an empty table that reads as "nothing is failing".

Errors raise :class:`QueryError`, whose message says what was expected, where (a caret
column) and, for unknown fields, which fields exist.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "MAX_PATTERN",
    "MAX_QUERY",
    "MAX_SUBJECT",
    "Query",
    "QueryError",
    "Value",
    "parse",
]

_T = TypeVar("_T", str, float)

Value = str | int | float | bool | None
"""What a record field may hold."""

MAX_QUERY = 1_000
"""Longest query text accepted."""
MAX_PATTERN = 200
"""Longest regular expression accepted."""
MAX_SUBJECT = 2_000
"""Only this many leading characters of a value are searched by ``~``."""
MAX_DEPTH = 32
"""Deepest nesting of parentheses / ``not`` accepted (keeps the parser off the C stack)."""

_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")


class QueryError(ValueError):
    """The query cannot be used; ``str(err)`` says why and ``position`` where (0-based)."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.message = message
        """What is wrong, in one line."""
        self.position = position
        """Offset in the query text where the problem starts."""

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position + 1})"


# ---------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op>==|!=|<=|>=|!~|&&|\|\||[=<>~!(),])
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<word>[^\s=!<>~(),'"&|]+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    """``op``, ``str``, ``word`` or ``end``."""
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise QueryError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind == "str":
            raw = m.group()
            body = re.sub(r"\\(.)", r"\1", raw[1:-1])
            toks.append(_Tok("str", body, pos))
        elif kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    if text[pos:].strip():  # pragma: no cover - the regex covers every character
        raise QueryError("unexpected text", pos)
    for t in toks:
        if t.kind == "op" and t.text in ("&", "|"):  # pragma: no cover
            raise QueryError(f"unexpected {t.text!r}", t.pos)
    toks.append(_Tok("end", "", len(text)))
    return toks


# ---------------------------------------------------------------------------------- tree

Record = Mapping[str, Value]
_Pred = Callable[[Record], bool]


def _text_of(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _number(v: Value) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except ValueError:
        return None


def _equal(actual: Value, wanted: str) -> bool:
    if actual is None:
        return False
    a, w = _number(actual), _number(wanted)
    if a is not None and w is not None and not isinstance(actual, str):
        return a == w
    return _text_of(actual).casefold() == wanted.casefold()


def _compare(actual: Value, op: str, wanted: str) -> bool:
    if actual is None:
        return False
    a, w = _number(actual), _number(wanted)
    if a is not None and w is not None:
        return _ordered(a, op, w)
    return _ordered(_text_of(actual).casefold(), op, wanted.casefold())


def _ordered(left: _T, op: str, right: _T) -> bool:
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _compile_regex(pattern: str, pos: int) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN:
        raise QueryError(f"regular expression longer than {MAX_PATTERN} characters", pos)
    if _NESTED_QUANTIFIER.search(pattern):
        raise QueryError("nested quantifiers like (a+)+ are not allowed (too slow)", pos)
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise QueryError(f"bad regular expression: {exc}", pos) from None


# ---------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(
        self,
        text: str,
        fields: frozenset[str] | None,
        text_fields: tuple[str, ...] | None,
        choices: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.fields = fields
        self.text_fields = text_fields
        self.choices = choices
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_keyword(self, tok: _Tok, *words: str) -> bool:
        return tok.kind == "word" and tok.text.casefold() in words

    def expect_op(self, op: str) -> _Tok:
        tok = self.take()
        if tok.kind != "op" or tok.text != op:
            raise QueryError(f"expected {op!r}, found {_describe(tok)}", tok.pos)
        return tok

    def parse(self) -> _Pred:
        if self.peek().kind == "end":
            return lambda r: True
        pred = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise QueryError(f"unexpected {_describe(tok)}", tok.pos)
        return pred

    def or_expr(self) -> _Pred:
        parts = [self.and_expr()]
        while True:
            tok = self.peek()
            if self.is_keyword(tok, "or") or (tok.kind == "op" and tok.text == "||"):
                self.take()
                parts.append(self.and_expr())
            else:
                break
        if len(parts) == 1:
            return parts[0]
        return lambda r: any(p(r) for p in parts)

    def and_expr(self) -> _Pred:
        parts = [self.not_expr()]
        while True:
            tok = self.peek()
            if self.is_keyword(tok, "and") or (tok.kind == "op" and tok.text == "&&"):
                self.take()
                parts.append(self.not_expr())
            elif (tok.kind in ("word", "str") and not self.is_keyword(tok, "or")) or (
                tok.kind == "op" and tok.text in ("(", "!")
            ):
                parts.append(self.not_expr())  # juxtaposition: "enc failing" = both
            else:
                break
        if len(parts) == 1:
            return parts[0]
        return lambda r: all(p(r) for p in parts)

    def not_expr(self) -> _Pred:
        tok = self.peek()
        if self.is_keyword(tok, "not") or (tok.kind == "op" and tok.text == "!"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError("query nested too deeply", tok.pos)
            inner = self.not_expr()
            self.depth -= 1
            return lambda r: not inner(r)
        return self.primary()

    def primary(self) -> _Pred:
        tok = self.take()
        if tok.kind == "op" and tok.text == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError("query nested too deeply", tok.pos)
            if self.peek().kind == "end":
                raise QueryError("expected an expression after '('", self.peek().pos)
            inner = self.or_expr()
            self.expect_op(")")
            self.depth -= 1
            return inner
        if tok.kind == "word" and self.is_keyword(tok, "and", "or"):
            raise QueryError(f"{tok.text!r} needs an expression on its left", tok.pos)
        if tok.kind not in ("word", "str"):
            raise QueryError(f"expected a field or a word, found {_describe(tok)}", tok.pos)
        nxt = self.peek()
        if tok.kind == "word" and nxt.kind == "op" and nxt.text in _OPS:
            return self.comparison(tok)
        if tok.kind == "word" and self.is_keyword(nxt, "in"):
            return self.membership(tok)
        return self.word(tok.text)

    def check_field(self, tok: _Tok) -> str:
        name = tok.text.casefold()
        if self.fields is not None and name not in self.fields:
            close = difflib.get_close_matches(name, sorted(self.fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self.fields))
            raise QueryError(f"unknown field {tok.text!r}{hint} (fields: {known})", tok.pos)
        return name

    def value(self) -> _Tok:
        tok = self.take()
        if tok.kind not in ("word", "str"):
            raise QueryError(f"expected a value, found {_describe(tok)}", tok.pos)
        return tok

    def check_choice(self, name: str, tok: _Tok) -> str:
        """``tok``'s text, when ``name`` takes it (a field without choices takes anything)."""
        allowed = self.choices.get(name)
        if allowed is not None and tok.text.casefold() not in allowed:
            close = difflib.get_close_matches(tok.text.casefold(), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise QueryError(
                f"{name} {tok.text!r} is not one of {', '.join(allowed)}{hint}", tok.pos
            )
        return tok.text

    def comparison(self, field_tok: _Tok) -> _Pred:
        name = self.check_field(field_tok)
        op = self.take().text
        val = self.value()
        wanted = val.text
        if op in ("=", "==", "!="):
            self.check_choice(name, val)
        if op in ("=", "=="):
            return lambda r: _equal(r.get(name), wanted)
        if op == "!=":
            return lambda r: not _equal(r.get(name), wanted)
        if op in ("~", "!~"):
            rx = _compile_regex(wanted, val.pos)

            def hit(r: Record) -> bool:
                v = r.get(name)
                return v is not None and rx.search(_text_of(v)[:MAX_SUBJECT]) is not None

            if op == "~":
                return hit
            return lambda r: not hit(r)
        return lambda r: _compare(r.get(name), op, wanted)

    def membership(self, field_tok: _Tok) -> _Pred:
        name = self.check_field(field_tok)
        self.take()  # "in"
        self.expect_op("(")
        wanted = [self.check_choice(name, self.value())]
        while self.peek().kind == "op" and self.peek().text == ",":
            self.take()
            wanted.append(self.check_choice(name, self.value()))
        self.expect_op(")")
        return lambda r: any(_equal(r.get(name), w) for w in wanted)

    def word(self, text: str) -> _Pred:
        needle = text.casefold()
        text_fields = self.text_fields

        def match(r: Record) -> bool:
            keys: Iterable[str] = text_fields if text_fields is not None else r.keys()
            for k in keys:
                v = r.get(k)
                if isinstance(v, str) and needle in v.casefold():
                    return True
            return False

        return match


_OPS = frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "~", "!~"})


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of query"
    return repr(tok.text)


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed filter; call :meth:`matches` on a record. Build with :func:`parse`."""

    text: str
    """The query as typed."""
    _pred: _Pred

    @property
    def is_empty(self) -> bool:
        """True for the empty query, which matches everything."""
        return not self.text.strip()

    def matches(self, record: Record) -> bool:
        """Whether ``record`` (field name -> value; names in lower case) passes the filter."""
        return self._pred(record)

    def filter(self, records: Iterable[Record]) -> list[Record]:
        return [r for r in records if self._pred(r)]


def parse(
    text: str,
    *,
    fields: Iterable[str] | None = None,
    text_fields: Iterable[str] | None = None,
    choices: Mapping[str, Iterable[str]] | None = None,
) -> Query:
    """Parse ``text`` into a :class:`Query`; raises :class:`QueryError` with a clear message.

    ``fields`` (lower-case names), when given, makes unknown field names an error with a
    suggestion; ``text_fields`` limits which fields a bare word searches (default: all
    string values); ``choices`` maps a field to every value it can hold (any case), and any
    other value compared with ``=``, ``!=`` or ``in`` is an error with a suggestion.
    """
    if len(text) > MAX_QUERY:
        raise QueryError(f"query longer than {MAX_QUERY} characters", MAX_QUERY)
    known = frozenset(f.casefold() for f in fields) if fields is not None else None
    searched = tuple(f.casefold() for f in text_fields) if text_fields is not None else None
    allowed = {
        name.casefold(): tuple(v.casefold() for v in values)
        for name, values in (choices or {}).items()
    }
    return Query(text, _Parser(text, known, searched, allowed).parse())
