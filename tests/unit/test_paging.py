"""The one page type: keyset cursors forward and back, clamped limits, refused cursors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.orm import Session

from portal.db import UTCDateTime
from portal.services import paging

meta = MetaData()
row = Table(
    "row",
    meta,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime()),
    Column("name", String(20)),
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Two rows share each timestamp, so the id must break ties.
ROWS = [{"id": i, "at": T0 + timedelta(hours=i // 2), "name": f"n{i % 7}"} for i in range(1, 26)]
NEWEST_FIRST = paging.Keyset("rows", ((row.c.at, True), (row.c.id, True)))
BY_NAME = paging.Keyset("names", ((row.c.name, False), (row.c.id, False)))


@pytest.fixture
def db() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with Session(engine) as session:
        session.execute(row.insert(), ROWS)
        yield session


def _walk(db: Session, keyset: paging.Keyset, limit: int) -> list[paging.Page[object]]:
    stmts = keyset.statements(select(row.c.id, row.c.at, row.c.name))
    pages, cursor = [], None
    while True:
        page = stmts.page(db, {}, cursor=cursor, limit=limit, key_of=_key(keyset))
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _key(keyset: paging.Keyset):  # type: ignore[no-untyped-def]
    return (lambda r: (r.at, r.id)) if keyset is NEWEST_FIRST else (lambda r: (r.name, r.id))


@pytest.mark.parametrize("limit", [1, 7, 10, 25, 100])
def test_walking_forward_shows_every_row_once_in_order(db: Session, limit: int) -> None:
    pages = _walk(db, NEWEST_FIRST, limit)
    ids = [r.id for p in pages for r in p.rows]
    assert ids == sorted(range(1, 26), key=lambda i: (ROWS[i - 1]["at"], i), reverse=True)
    assert pages[0].previous_cursor is None
    assert all(p.previous_cursor is not None for p in pages[1:])


def test_previous_goes_back_to_exactly_the_page_before(db: Session) -> None:
    stmts = NEWEST_FIRST.statements(select(row.c.id, row.c.at, row.c.name))
    pages = _walk(db, NEWEST_FIRST, 10)
    back = stmts.page(db, {}, cursor=pages[2].previous_cursor, limit=10, key_of=_key(NEWEST_FIRST))
    assert [r.id for r in back.rows] == [r.id for r in pages[1].rows]
    first = stmts.page(db, {}, cursor=back.previous_cursor, limit=10, key_of=_key(NEWEST_FIRST))
    assert [r.id for r in first.rows] == [r.id for r in pages[0].rows]
    assert first.previous_cursor is None


def test_an_ascending_order_pages_as_well(db: Session) -> None:
    ids = [r.id for p in _walk(db, BY_NAME, 4) for r in p.rows]
    assert ids == [r["id"] for r in sorted(ROWS, key=lambda r: (r["name"], r["id"]))]


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        "%%%",
        "é",
        "x" * 600,
        paging.encode("names", ("n1", 3)),
        paging.encode("rows", (1,)),
    ],
    ids=["garbage", "symbols", "non-ascii", "too-long", "other-list", "wrong-arity"],
)
def test_a_cursor_not_handed_out_for_this_list_is_refused(db: Session, cursor: str) -> None:
    stmts = NEWEST_FIRST.statements(select(row.c.id, row.c.at, row.c.name))
    with pytest.raises(paging.InvalidCursor) as refused:
        stmts.page(db, {}, cursor=cursor, limit=10, key_of=_key(NEWEST_FIRST))
    assert refused.value.field == "cursor"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 20),
        (0, 1),
        (-5, 1),
        (1, 1),
        (100, 100),
        (101, 100),
        ("50", 50),
        ("²", 20),
        ("1e9", 20),
    ],
)
def test_limits_are_clamped_to_1_through_100(given: object, expected: int) -> None:
    assert paging.clamp(given) == expected  # type: ignore[arg-type]
