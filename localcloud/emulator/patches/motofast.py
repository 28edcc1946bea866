"""Fast paths in moto's DynamoDB for the plain expressions the pipeline writes.

Profiling the emulator under `make bench` showed moto's DynamoDB spending most of its time parsing
and validating expressions: every `Update` of a 100-item transaction builds, deep-copies and walks
an expression tree (about 1.7 ms an item), and every condition is lexed and parsed again. That one
process, not our functions, set the pace of the whole local cloud.

Here the plain forms are compiled once per expression string and applied directly:
- conditions: `attribute_exists(a)`, `attribute_not_exists(a)` and `a OP :v` (OP one of = < <= > >=),
  joined by AND only or by OR only;
- updates: `SET a = :v, ...`, `ADD a :n, ...` (numbers), `REMOVE a, ...`, top-level attributes only,
  on an item that exists.
`a` is a name or a `#placeholder`. Anything else - functions, paths, sets, a new item, reserved
words used bare, a missing placeholder, a key attribute as target, a type mismatch - goes to moto's
own code, so moto still decides every error. `tests/adapters/test_moto_patches.py` runs both paths on the
same requests and compares items and outcomes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

_NAME = r"#?[A-Za-z_][A-Za-z0-9_]*"
_VALUE = r":[A-Za-z0-9_]+"
_FUNCTION_TERM = re.compile(rf"^(attribute_exists|attribute_not_exists)\(\s*({_NAME})\s*\)$")
_COMPARE_TERM = re.compile(rf"^({_NAME})\s*(<=|>=|=|<|>)\s*({_VALUE})$")
_SET_ACTION = re.compile(rf"^({_NAME})\s*=\s*({_VALUE})$")
_ADD_ACTION = re.compile(rf"^({_NAME})\s+({_VALUE})$")
_REMOVE_ACTION = re.compile(rf"^({_NAME})$")
_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b", re.IGNORECASE)
_SIMPLE_TYPES = {"S", "N", "BOOL", "NULL"}
_LARGEST_FAST_VALUE = 64 * 1024  # bigger values go to moto, which checks the 400 KB item limit
_LARGEST_ITEM = 405000  # moto's LimitedSizeDict limit
_UNRESOLVED = object()
_enabled = True
fast_updates = 0  # how many updates took the fast path (tests check it is taken)


@contextmanager
def moto_only() -> Iterator[None]:
    """Run moto's own code for everything (the parity tests compare both paths)."""
    global _enabled
    _enabled = False
    try:
        yield
    finally:
        _enabled = True


@functools.cache
def _reserved_words() -> frozenset[str]:
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    return frozenset(k.upper() for k in ReservedKeywords.get_reserved_keywords())


def _reserved(word: str) -> bool:
    return word.upper() in _reserved_words()


def _plain_name(name: str) -> bool:
    return name.startswith("#") or not _reserved(name)


def _resolve_name(name: str, names: Mapping[str, str] | None) -> str | None:
    if not name.startswith("#"):
        return name
    return (names or {}).get(name)


def _resolve_value(placeholder: str, values: Mapping[str, Any] | None) -> Any:
    value = (values or {}).get(placeholder)
    if not isinstance(value, dict) or len(value) != 1:
        return _UNRESOLVED
    (kind, raw), = value.items()
    if kind not in _SIMPLE_TYPES:
        return _UNRESOLVED
    if kind == "N":
        try:
            Decimal(raw)
        except (InvalidOperation, TypeError):
            return _UNRESOLVED
    elif kind == "S" and (not isinstance(raw, str) or len(raw) > _LARGEST_FAST_VALUE):
        return _UNRESOLVED
    return value


# -- conditions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Term:
    kind: str  # "exists", "not_exists" or an operator
    name: str
    value: str | None = None


@dataclass(frozen=True)
class Condition:
    any_of: bool  # joined by OR (else AND)
    terms: tuple[_Term, ...]

    def holds(self, item: Any, names: Mapping[str, str] | None, values: Mapping[str, Any] | None) -> bool | None:
        """True/False, or None when a placeholder cannot be resolved (moto's code then reports it)."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        attrs = item.attrs if item is not None else {}
        verdicts = []
        for term in self.terms:
            name = _resolve_name(term.name, names)
            if name is None:
                return None
            current = attrs.get(name)
            if term.kind == "exists":
                verdicts.append(current is not None)
                continue
            if term.kind == "not_exists":
                verdicts.append(current is None)
                continue
            value = _resolve_value(term.value or "", values)
            if value is _UNRESOLVED:
                return None
            expected = DynamoType(value)
            verdicts.append(current is not None and current.type == expected.type
                            and _COMPARISONS[term.kind](current.cast_value, expected.cast_value))
        return any(verdicts) if self.any_of else all(verdicts)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@functools.lru_cache(maxsize=512)
def compile_condition(expression: str) -> Condition | None:
    text = expression.strip()
    joiners = set(re.findall(r"\s(AND|OR)\s", text, re.IGNORECASE))
    if len(joiners) > 1 or any(j not in ("AND", "OR") for j in joiners):
        return None
    joiner = next(iter(joiners), "AND")
    terms = []
    for part in re.split(rf"\s{joiner}\s", text):
        part = part.strip()
        if match := _FUNCTION_TERM.match(part):
            function, name = match.groups()
            term = _Term("exists" if function == "attribute_exists" else "not_exists", name)
        elif match := _COMPARE_TERM.match(part):
            name, operator, value = match.groups()
            term = _Term(operator, name, value)
        else:
            return None
        if not _plain_name(term.name):
            return None
        terms.append(term)
    return Condition(any_of=joiner == "OR", terms=tuple(terms))


# -- updates ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Update:
    sets: tuple[tuple[str, str], ...]
    adds: tuple[tuple[str, str], ...]
    removes: tuple[str, ...]

    def plan(self, item: Any, key_names: set[str], names: Mapping[str, str] | None,
             values: Mapping[str, Any] | None) -> list[tuple[str, Any]] | None:
        """(attribute, new DynamoType or None to remove) for each action, or None to let moto do it."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        planned: list[tuple[str | None, Any]] = []
        for name, placeholder in self.sets:
            value = _resolve_value(placeholder, values)
            if value is _UNRESOLVED:
                return None
            planned.append((_resolve_name(name, names), DynamoType(value)))
        for name, placeholder in self.adds:
            value = _resolve_value(placeholder, values)
            attribute = _resolve_name(name, names)
            if value is _UNRESOLVED or "N" not in value or attribute is None:
                return None
            current = item.attrs.get(attribute)
            if current is not None and current.type != "N":
                return None
            planned.append((attribute, (current or DynamoType({"N": "0"})) + DynamoType(value)))
        for name in self.removes:
            planned.append((_resolve_name(name, names), None))
        targets = [attribute for attribute, _ in planned]
        if None in targets or len(set(targets)) != len(targets) or key_names.intersection(targets):
            return None
        return [(str(attribute), value) for attribute, value in planned]


@functools.lru_cache(maxsize=512)
def compile_update(expression: str) -> Update | None:
    pieces = _CLAUSE.split(expression)
    if pieces[0].strip():
        return None
    clauses: dict[str, list[str]] = {}
    for keyword, body in zip(pieces[1::2], pieces[2::2], strict=True):
        if keyword not in ("SET", "ADD", "REMOVE") or keyword in clauses:
            return None
        clauses[keyword] = [action.strip() for action in body.split(",")]
    sets: list[tuple[str, str]] = []
    adds: list[tuple[str, str]] = []
    removes: list[str] = []
    for action in clauses.get("SET", []):
        if not (match := _SET_ACTION.match(action)):
            return None
        sets.append((match.group(1), match.group(2)))
    for action in clauses.get("ADD", []):
        if not (match := _ADD_ACTION.match(action)):
            return None
        adds.append((match.group(1), match.group(2)))
    for action in clauses.get("REMOVE", []):
        if not (match := _REMOVE_ACTION.match(action)):
            return None
        removes.append(action)
    if not (sets or adds or removes):
        return None
    names = [name for name, _ in sets] + [name for name, _ in adds] + removes
    if not all(_plain_name(name) for name in names):
        return None
    return Update(sets=tuple(sets), adds=tuple(adds), removes=tuple(removes))


class ValidatingConditionParser:
    """Stands in for moto's ConditionExpressionParser in moto's request handlers, which parse a
    condition only to validate it (they call `parse()` and read the placeholders it found): a plain
    condition whose placeholders all resolve is valid, and its placeholders are read off the
    compiled terms; anything else is parsed by moto."""

    def __init__(self, expression: str | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None):
        self._args = (expression, names, values)
        self.expr_attr_names_found: list[str] = []
        self.expr_attr_values_found: list[str] = []

    def parse(self) -> Any:
        expression, names, values = self._args
        condition = compile_condition(expression) if expression and _enabled else None
        if condition is not None and all(
                (not t.name.startswith("#") or t.name in (names or {}))
                and (t.value is None or t.value in (values or {})) for t in condition.terms):
            self.expr_attr_names_found = [t.name for t in condition.terms]
            self.expr_attr_values_found = [t.value for t in condition.terms if t.value is not None]
            return None
        from moto.dynamodb.comparisons import create_condition_expression_parser

        parser = create_condition_expression_parser(expression, names, values)  # type: ignore[arg-type]
        parsed = parser.parse()
        self.expr_attr_names_found = parser.expr_attr_names_found
        self.expr_attr_values_found = parser.expr_attr_values_found
        return parsed


_BLOB_MEMBER = re.compile(rb'"BS?"\s*:')


def json_parameters(original: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """DynamoDB's requests are JSON whose shape is the parameters themselves: read them with
    json.loads instead of walking the service model for every attribute of every item. Blobs are
    the one difference (the model decodes their base64), so a body with any goes to moto's parser."""
    def parse_parameters(self: Any, request: Any) -> None:
        body = request.data
        if _enabled and body and not _BLOB_MEMBER.search(body):
            try:
                self.params = json.loads(body)
                return
            except ValueError:
                pass  # moto's parser reports it
        original(self, request)
    return parse_parameters


def _key_names(table: Any) -> set[str]:
    return {name for name in (table.hash_key_attr, table.range_key_attr) if name}


def _plain_verdict(expression: str, names: Mapping[str, str] | None, values: Mapping[str, Any] | None,
                   item: Any) -> bool | None:
    """A plain condition's verdict on an item (None: absent), or None when moto must judge it."""
    condition = compile_condition(expression) if _enabled else None
    return condition.holds(item, names, values) if condition else None


def condition_holds(expression: str | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None,
                    item: Any) -> bool:
    """Evaluate a condition against an item (None: absent), fast when plain, else by moto's parser."""
    if expression is None:
        return True
    verdict = _plain_verdict(expression, names, values, item)
    if verdict is None:
        from moto.dynamodb.comparisons import get_filter_expression

        return bool(get_filter_expression(expression, names, values).expr(item))  # type: ignore[arg-type]
    return verdict


def fast_update_item(backend: Any, table_name: str, key: dict[str, Any], update_expression: str | None,
                     names: Mapping[str, str] | None, values: Mapping[str, Any] | None,
                     attribute_updates: Any = None, expected: Any = None, condition_expression: str | None = None,
                     return_values_on_condition_check_failure: str | None = None) -> Any:
    """The updated item, or None when moto's own update_item must handle this request."""
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    global fast_updates
    if attribute_updates or expected or not update_expression or not _enabled:
        return None
    update = compile_update(update_expression)
    table = backend.get_table(table_name)
    key_names = _key_names(table)
    if update is None or table.stream_shard is not None or set(key) != key_names:
        return None
    item = table.get_item(*backend.get_keys_value(table, key))
    if item is None:
        return None
    if condition_expression is not None:
        verdict = _plain_verdict(condition_expression, names, values, item)
        if verdict is None:
            return None
        if not verdict:
            if return_values_on_condition_check_failure == "ALL_OLD":
                raise ConditionalCheckFailed(item=item.to_json()["Attributes"])
            raise ConditionalCheckFailed
    planned = update.plan(item, key_names, names, values)
    if planned is None:
        return None
    attrs = dict(item.attrs)
    for attribute, value in planned:
        if value is None:
            attrs.pop(attribute, None)
        else:
            attrs[attribute] = value
    if _size(attrs) > _LARGEST_ITEM:
        return None  # moto raises its own error for this
    item.attrs.clear()
    dict.update(item.attrs, attrs)  # sized once above, rather than once per attribute by LimitedSizeDict
    fast_updates += 1
    return item


def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's `Item.__init__`, with the 400 KB limit checked once for the whole item: moto's
    LimitedSizeDict re-measures every attribute as each one is added (quadratic in attributes).
    Sizes are positive, so the whole item is over the limit exactly when some prefix of it is."""
    from moto.dynamodb.models.dynamo_type import DynamoType, ItemSizeTooLarge, LimitedSizeDict

    self.hash_key = hash_key
    self.range_key = range_key
    if not _enabled:
        self.attrs = LimitedSizeDict()
        for name, value in attrs.items():
            self.attrs[name] = DynamoType(value)
        return
    converted = {name: DynamoType(value) for name, value in attrs.items()}
    if _size(converted) > _LARGEST_ITEM:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict()
    dict.update(self.attrs, converted)


def _size(attrs: Mapping[str, Any]) -> int:
    from moto.dynamodb.models.utilities import bytesize

    return sum(bytesize(name) + value.size() for name, value in attrs.items())
