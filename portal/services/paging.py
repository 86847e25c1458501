"""One page type for every list: an opaque keyset cursor and a clamped limit.

A list is ordered by a key that identifies each row (e.g. `(published_at, id)` newest first,
or `(display_name, id)` A to Z). A cursor names the key of the row a page ends at (or starts
at) and which way to read on; pages never count an offset, so they stay fast however deep they
go and neither skip nor repeat rows while new ones arrive. The limit is clamped to 1..MAX_LIMIT
and bound as a parameter, so a statement built once serves every page size.

Pages render a `Page` as "Newer"/"Older" (or "Previous"/"Next") links (`_macros/pages.html`);
the JSON API as `{"items": rows, "nextCursor": next_cursor}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Integer, Select, and_, bindparam, or_
from sqlalchemy.orm import Session

from portal.services.errors import N_, ServiceError

T = TypeVar("T")
AnySelect = Select[*tuple[Any, ...]]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class InvalidCursor(ServiceError):
    """A cursor this module did not hand out (edited, truncated, or from another list)."""

    def __init__(self) -> None:
        super().__init__("cursor", N_("This page link is not valid. Showing the first page."))


def clamp(limit: int | str | None, default: int = DEFAULT_LIMIT) -> int:
    """`limit` within 1..MAX_LIMIT; missing or unreadable gives `default`."""
    if isinstance(limit, str):
        limit = int(limit) if limit.isascii() and limit.isdigit() and len(limit) < 6 else None
    if limit is None:
        return default
    return max(1, min(MAX_LIMIT, limit))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list. The cursors are None at either end of the list."""

    rows: list[T]
    next_cursor: str | None = None
    previous_cursor: str | None = None
    limit: int = DEFAULT_LIMIT
    #: How many rows the whole list has, where a page shows it (the lab list's heading).
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Keyset:
    """A list's order: a name (a cursor never crosses lists) and its key columns, each with
    its direction (`True` for descending), ending in a unique column such as the id."""

    name: str
    #: (column or expression, descending) pairs.
    columns: tuple[tuple[Any, bool], ...]

    def statements(self, base: AnySelect) -> KeysetStatements:
        """The first, next and previous page of `base`, built once: the key and the limit are
        bind parameters (`key_0`, `key_1`, ..., `page_limit`)."""
        keys = [bindparam(f"key_{i}", type_=col.type) for i, (col, _d) in enumerate(self.columns)]
        limit: BindParameter[int] = bindparam("page_limit", type_=Integer)
        forward = [c.desc() if d else c.asc() for c, d in self.columns]
        backward = [c.asc() if d else c.desc() for c, d in self.columns]
        return KeysetStatements(
            keyset=self,
            first=base.order_by(*forward).limit(limit),
            next=base.where(self._beyond(keys, forward=True)).order_by(*forward).limit(limit),
            previous=base.where(self._beyond(keys, forward=False)).order_by(*backward).limit(limit),
        )

    def _beyond(self, keys: Sequence[Any], *, forward: bool) -> ColumnElement[bool]:
        """Rows after `keys` in the list's order (`forward`), or before them."""
        clauses = []
        for i, (column, descending) in enumerate(self.columns):
            same = [self.columns[j][0] == keys[j] for j in range(i)]
            later = column < keys[i] if descending == forward else column > keys[i]
            clauses.append(and_(*same, later))
        return or_(*clauses)


@dataclass(frozen=True, slots=True)
class KeysetStatements:
    keyset: Keyset
    first: AnySelect
    next: AnySelect
    previous: AnySelect

    def page(
        self,
        session: Session,
        params: dict[str, Any],
        *,
        cursor: str | None,
        limit: int,
        key_of: Callable[[Any], Sequence[Any]],
    ) -> Page[Any]:
        """Run one page of rows after (or before) `cursor`; `key_of(row)` gives a row's key."""
        arity = len(self.keyset.columns)
        position = decode(self.keyset.name, cursor, arity)
        bound = {**params, "page_limit": limit + 1}
        if position is None:
            stmt = self.first
        else:
            stmt = self.previous if position.backward else self.next
            bound.update({f"key_{i}": v for i, v in enumerate(position.key)})
        # No unique(): hashing every value of plain column rows cost a fifth of their read. A
        # list of entities with a joined eager-loaded collection would need it, and SQLAlchemy
        # refuses to return those rows without it rather than repeat them.
        rows = list(session.execute(stmt, bound).all())
        more = len(rows) > limit
        rows = rows[:limit]
        backward = position is not None and position.backward
        if backward:
            rows.reverse()
        has_next = more if not backward else True
        has_previous = position is not None and (more if backward else True)
        name = self.keyset.name
        return Page(
            rows=rows,
            next_cursor=encode(name, key_of(rows[-1])) if rows and has_next else None,
            previous_cursor=encode(name, key_of(rows[0]), backward=True)
            if rows and has_previous
            else None,
            limit=limit,
        )


@dataclass(frozen=True, slots=True)
class Position:
    key: tuple[Any, ...]
    backward: bool = False


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if hasattr(value, "value") and isinstance(value.value, str):  # a StrEnum
        return str(value.value)
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, raw),) = value.items()
        if kind == "t" and isinstance(raw, str):
            return datetime.fromisoformat(raw)
        if kind == "d" and isinstance(raw, str):
            return date.fromisoformat(raw)
        raise ValueError("not a cursor value")
    if value is None or isinstance(value, bool | int | str):
        return value
    raise ValueError("not a cursor value")


def encode(list_name: str, key: Sequence[Any], *, backward: bool = False) -> str:
    """An opaque, URL-safe cursor for `key` in the list `list_name`."""
    payload = [list_name, "b" if backward else "f", [_encode_value(v) for v in key]]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(list_name: str, cursor: str | None, arity: int) -> Position | None:
    """The position a cursor names; None for no cursor; `InvalidCursor` for anything else."""
    if not cursor:
        return None
    try:
        if len(cursor) > 512 or not cursor.isascii():
            raise ValueError("not a cursor")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, direction, values = json.loads(raw)
        key = tuple(_decode_value(v) for v in values)
        if name != list_name or direction not in ("b", "f") or len(key) != arity:
            raise ValueError("a cursor of another list")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc
    return Position(key, backward=direction == "b")
