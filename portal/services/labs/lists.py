"""Lists of lab results: the filtered keyset pages, the recent rows, the test pick-list."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, Row, Select, String, and_, bindparam, func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal.access import (
    MAX_ID,
    Actor,
    Permission,
    RoleScope,
    reader,
    require,
    require_visible,
    scoped,
)
from portal.db import UTCDateTime
from portal.models import LabResult, LabResultVersion, ResultStatus, Role
from portal.services import paging


@dataclass(frozen=True, slots=True)
class LabRow:
    result: LabResult
    version: LabResultVersion


#: The lab list as plain rows (`latest_rows`): the result's columns and those of the version
#: shown, named as in the models, plus `sort_key` (the list's order). No ORM objects are made.
LAB_ROW_COLUMNS = (
    LabResult.id,
    LabResult.created_at,
    LabResult.updated_at,
    LabResult.patient_id,
    LabResult.test_code,
    LabResult.test_name,
    LabResult.category,
    LabResult.ordered_by_id,
    LabResult.collected_at,
    LabResultVersion.status,
    LabResultVersion.result_value,
    LabResultVersion.units,
    LabResultVersion.reference_range,
    LabResultVersion.flag,
    LabResultVersion.visibility,
    LabResultVersion.published_at,
    LabResultVersion.version,
)


def _latest_unscoped(role: Role, rows: bool = False):  # type: ignore[no-untyped-def]
    """Each result joined to the newest version the role may see, newest collected first: as
    the two ORM objects, or (`rows`) as the plain columns of `LAB_ROW_COLUMNS`. One builder for
    both, so the join, the order and the scope that `rs.scope` adds are the same.

    Every role orders by collection time: a correction (or a late release) of an old sample
    keeps its place in time instead of reading as the newest value."""
    version_col = LabResult.shared_version if role is Role.PATIENT else LabResult.current_version
    sort_col = LabResult.collected_at
    entities = (LabResult, LabResultVersion)
    stmt = (
        select(*((*LAB_ROW_COLUMNS, sort_col.label("sort_key")) if rows else entities))
        .join(
            LabResultVersion,
            and_(
                LabResultVersion.lab_result_id == LabResult.id,
                LabResultVersion.version == version_col,
            ),
        )
        .order_by(sort_col.desc(), LabResult.id.desc())
    )
    return stmt, sort_col


def _latest_stmt(
    rs: RoleScope, by_patient: bool, by_test: bool, skip: bool
) -> Select[LabResult, LabResultVersion]:
    """Each result with the newest version the reader may see, newest first: `:limit` rows
    (after the first `:offset` when `skip`), of patient `:patient_id` when `by_patient`, of
    test `:test_code` when `by_test`."""
    stmt, _sort_col = _latest_unscoped(rs.role)
    if by_patient:
        stmt = stmt.where(LabResult.patient_id == bindparam("patient_id", type_=Integer))
    if by_test:
        stmt = stmt.where(LabResult.test_code == bindparam("test_code", type_=String))
    stmt = rs.scope(stmt, LabResult).limit(bindparam("limit", type_=Integer))
    if skip:
        stmt = stmt.offset(bindparam("offset", type_=Integer))
    return stmt


def list_latest(
    session: Session,
    actor: Actor,
    *,
    patient_id: int | None = None,
    test_code: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> list[LabRow]:
    """The newest `limit` results the actor may see (of one patient, of one test), each with
    its newest version the actor may see. One query; its statement is built once per role
    and combination of filters (the dashboard's "recent results" runs it on every visit)."""
    filters = (patient_id is not None, test_code is not None, offset != 0)
    stmt = scoped(_latest_stmt, actor, *filters)
    params = reader(actor, patient_id=patient_id, test_code=test_code, limit=limit, offset=offset)
    return [LabRow(r, v) for r, v in session.execute(stmt, params)]


@dataclass(frozen=True, slots=True)
class LabFilter:
    """What a result list is narrowed to; empty fields mean "any".

    `status` is that of the version shown (the newest one the reader may see). With
    `patient_id`, `latest_page` answers 404 for a patient the reader may not see.
    """

    test_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    patient_id: int | None = None
    status: ResultStatus | None = None


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_day(raw: str | None, key: str, errors: dict[str, str]) -> date | None:
    """`raw` as a YYYY-MM-DD day (ASCII digits); a wrong one is noted in `errors[key]`."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        errors[key] = "Enter a date like 2026-01-31."
        return None
    if day >= date.max:
        # The list reads "up to the end of that day": the last representable day has no end.
        errors[key] = "Enter a date before the year 9999 ends."
        return None
    return day


def parse_filter(
    test: str | None, date_from: str | None, date_to: str | None
) -> tuple[LabFilter, dict[str, str]]:
    """The result list's filter from its query text, and an error per field it refused.

    Keys of the errors are the argument names ("from", "to"). A date that cannot be read, or an
    end before the start, is refused; when anything is refused the dates are dropped (the test
    is kept), so the filter returned is always one `latest_page` accepts.
    """
    errors: dict[str, str] = {}
    test_code = (test or "").strip() or None
    since = _parse_day(date_from, "from", errors)
    until = _parse_day(date_to, "to", errors)
    if since is not None and until is not None and until < since:
        errors["to"] = "The end date must be on or after the start date."
    if errors:
        return LabFilter(test_code=test_code), errors
    return LabFilter(test_code=test_code, date_from=since, date_to=until), errors


def _page_stmts(
    rs: RoleScope,
    test: bool,
    since: bool,
    until: bool,
    patient: bool = False,
    status: bool = False,
    rows: bool = False,
) -> tuple[paging.KeysetStatements, Select[tuple[int]]]:
    """The list's pages for one shape of filters (the filter values are bind parameters), and
    the count of the whole filtered list; `rows`: as plain rows (`_latest_unscoped`)."""
    stmt, sort_col = _latest_unscoped(rs.role, rows)
    stmt = stmt.order_by(None)
    if patient:
        stmt = stmt.where(LabResult.patient_id == bindparam("patient_id", type_=Integer))
    if status:
        status_type = LabResultVersion.status.type
        stmt = stmt.where(LabResultVersion.status == bindparam("status", type_=status_type))
    if test:
        stmt = stmt.where(LabResult.test_code == bindparam("test_code", type_=String))
    if since:
        stmt = stmt.where(sort_col >= bindparam("since", type_=UTCDateTime))
    if until:
        stmt = stmt.where(sort_col < bindparam("until", type_=UTCDateTime))
    filtered = rs.scope(stmt, LabResult)
    count = filtered.with_only_columns(func.count(LabResult.id))
    # The pages show the filtered total: it rides along as a scalar subquery, one round trip
    # for the page. The plain rows leave it out: the API's answer has no total, and counting
    # took the database as long as reading the page.
    shown = filtered if rows else filtered.add_columns(count.scalar_subquery().label("total"))
    keyset = paging.Keyset("lab_results", ((sort_col, True), (LabResult.id, True)))
    return keyset.statements(shown), count


def latest_page(
    session: Session,
    actor: Actor,
    filters: LabFilter,
    *,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page[LabRow]:
    """One page of the newest visible version of each result, newest first, with the total.

    One query whatever the number of results: the page (one row more than asked, to know
    whether another page follows) with the filtered total alongside; a second one only for a
    page past the end, which has no row to carry the total. A cursor this list did not hand
    out is refused with `paging.InvalidCursor`; a role that never reads results (an admin)
    with 403; a `filters.patient_id` the actor may not see with 404 (checked only when the
    page is empty: a row of that patient already proves they are the actor's).
    """
    require(actor, Permission.LAB_RESULT_READ)
    page = _latest(session, actor, filters, cursor, limit, rows=False)
    return replace(page, rows=[LabRow(r, v) for r, v, _total in page.rows])


def latest_rows(
    session: Session,
    actor: Actor,
    filters: LabFilter,
    *,
    cursor: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> paging.Page[Row[Any]]:
    """`latest_page` as plain rows (the columns of `LAB_ROW_COLUMNS`, then `sort_key`): the same
    statement builder, scope, order, cursors and refusals, without ORM objects and without the
    total (the JSON API writes the rows straight into its answer, which has no total)."""
    require(actor, Permission.LAB_RESULT_READ)
    return _latest(session, actor, filters, cursor, limit, rows=True)


def _latest(
    session: Session,
    actor: Actor,
    filters: LabFilter,
    cursor: str | None,
    limit: int,
    *,
    rows: bool,
) -> paging.Page[Any]:
    """`latest_page` (ORM objects) or `latest_rows` (`rows`), whose callers checked the role."""
    if filters.patient_id is not None and not 0 < filters.patient_id <= MAX_ID:
        raise NotFound()  # no row has it (and a driver would refuse to bind it)
    pages, count = scoped(
        _page_stmts,
        actor,
        bool(filters.test_code),
        filters.date_from is not None,
        filters.date_to is not None,
        filters.patient_id is not None,
        filters.status is not None,
        rows,
    )
    params = reader(actor)
    if filters.patient_id is not None:
        params["patient_id"] = filters.patient_id
    if filters.status is not None:
        params["status"] = filters.status
    if filters.test_code:
        params["test_code"] = filters.test_code
    if filters.date_from:
        params["since"] = datetime.combine(filters.date_from, time(), UTC)
    if filters.date_to:
        params["until"] = datetime.combine(filters.date_to, time(), UTC) + timedelta(days=1)

    def key(row: Any) -> tuple[datetime | None, int]:
        if rows:
            return row.sort_key, row.id
        result = row[0]
        return result.collected_at, result.id

    page = pages.page(session, params, cursor=cursor, limit=paging.clamp(limit), key_of=key)
    if not page.rows and filters.patient_id is not None:
        require_visible(session, actor, filters.patient_id)
    if rows:
        return page
    total = page.rows[0][-1] if page.rows else 0
    if not page.rows and cursor:  # past the end: no row carries the total
        total = session.scalar(count, params) or 0
    return replace(page, total=total)


def _tests_seen_stmt(rs: RoleScope, by_patient: bool = False) -> Select[str, str]:
    stmt = (
        select(LabResult.test_code, LabResult.test_name)
        .distinct()
        .order_by(LabResult.test_name, LabResult.test_code)
    )
    if by_patient:
        stmt = stmt.where(LabResult.patient_id == bindparam("patient_id", type_=Integer))
    if rs.role is Role.PATIENT:
        # Explicit as well as in the loader criteria: a column-only select names no entity.
        stmt = stmt.where(LabResult.shared_version.is_not(None))
    return rs.scope(stmt, LabResult)


def tests_seen(session: Session, actor: Actor, patient_id: int | None) -> list[tuple[str, str]]:
    """(test code, test name) of every result the actor may see (of one patient): the list's
    filter choices."""
    stmt = scoped(_tests_seen_stmt, actor, patient_id is not None)
    params = reader(actor, patient_id=patient_id)
    return [(code, name) for code, name in session.execute(stmt, params)]


def parse_status(raw: str | None, errors: dict[str, str]) -> ResultStatus | None:
    """A status filter from its query text (blank: any); a wrong one is noted in
    `errors["status"]` and dropped."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return ResultStatus(text)
    except ValueError:
        errors["status"] = "Choose a status from the list."
        return None
