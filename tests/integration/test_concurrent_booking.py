"""Six people book one free slot of one provider at the same instant: one visit, no 500.

Three sessions as alice and three as bob post dr.chen's same slot together, through the
booking page and through the API. On SQLite the bookings queue for the write lock and the
later ones find the slot held; on PostgreSQL they may all find it open, and the unique index
of migration 0005 refuses all but one. Either way the losers read "That time was just taken".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from portal.access import unscoped
from portal.extensions import db
from portal.models import HOLDS_SLOT, Appointment
from tests.support import all_at_once, bearer, csrf_of, signed_in

TAKEN = "That time was just taken; choose another."
PATIENTS = ("alice@example.org", "bob@example.org") * 3


def _free_slots(base: str, s: requests.Session) -> tuple[str, list[str]]:
    """Dr Chen's provider id on the booking page and his open slots, latest first."""
    page = s.get(base + "/my/appointments/new", timeout=30).text
    provider = re.search(r'<option selected value="(\d+)">|<option value="(\d+)" selected>', page)
    chosen = provider.group(1) or provider.group(2) if provider else None
    assert chosen, "no provider chosen on the booking page"
    slots = re.findall(r'<option value="([^"]+)">\d\d:\d\d–', page)
    assert len(slots) >= 2
    return chosen, slots[::-1]


def _active_at(app: Flask, start: str) -> int:
    moment = datetime.fromisoformat(start)
    with app.app_context():
        stmt = select(func.count(Appointment.id)).where(
            Appointment.start_at == moment, Appointment.status.in_(HOLDS_SLOT)
        )
        count = db.session.scalar(unscoped(stmt, "test: visits holding one slot")) or 0
        db.session.rollback()
    return int(count)


@pytest.fixture(scope="module")
def slots(served: tuple[Flask, str]) -> list[str]:
    _app, base = served
    _provider, found = _free_slots(base, signed_in(base, "alice@example.org"))
    return found


def test_six_page_bookings_of_one_slot_make_one_visit_and_five_clear_refusals(
    served: tuple[Flask, str], slots: list[str]
) -> None:
    app, base = served
    start = slots[0]
    sessions = [signed_in(base, email) for email in PATIENTS]
    provider, _slots = _free_slots(base, sessions[0])
    url = base + "/my/appointments/new"
    tokens = [csrf_of(s, url) for s in sessions]

    def book(s: requests.Session, token: str) -> Callable[[], requests.Response]:
        form = {"provider_id": provider, "start_at": start, "csrf_token": token}
        return lambda: s.post(url, data=form, allow_redirects=False, timeout=60)

    answers = all_at_once([book(s, t) for s, t in zip(sessions, tokens, strict=True)])

    assert sorted(a.status_code for a in answers) == [303] + [422] * 5
    for refused in (a for a in answers if a.status_code == 422):
        assert TAKEN in refused.text
    assert _active_at(app, start) == 1


def test_six_api_bookings_of_one_slot_make_one_visit_and_five_409s(
    served: tuple[Flask, str], slots: list[str]
) -> None:
    app, base = served
    start = slots[1]
    headers = [bearer(base, email) for email in PATIENTS]
    chen = requests.get(base + "/api/v1/providers", headers=headers[0], timeout=30).json()
    body = {"providerId": chen["items"][0]["userId"], "startAt": start}

    def book(auth: dict[str, str]) -> Callable[[], requests.Response]:
        return lambda: requests.post(
            base + "/api/v1/appointments", json=body, headers=auth, timeout=60
        )

    answers = all_at_once([book(h) for h in headers])

    assert sorted(a.status_code for a in answers) == [201] + [409] * 5
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert refused.json()["errors"] == {"startAt": [TAKEN]}
    assert _active_at(app, start) == 1
