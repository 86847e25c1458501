"""Audit by what is shown: every response that carries a patient's identity or records has its
audit entry, whatever its status (a page, or a refused form that re-renders a record with 422),
and requests that show nothing (OPTIONS, HEAD, redirects) write none.

The walk takes every route of the app, not a hand list: each is requested as the person its
area is for, with alice's records in its URL, by GET and (with only a CSRF token, the error
state of nearly every form) by POST.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.access import RoleScope, reader
from portal.models import AuditEvent, Conversation, LabResult, TreatmentPlan
from tests.conftest import Demo, csrf_token
from tests.web.audit_support import entries_for
from tests.web.patient_records import records_of

#: Who opens each area (the auth blueprint's own-account pages: alice, as the strictest case).
AREAS = {"patient": "alice", "staff": "dr_chen", "admin": "admin", "auth": "alice"}
HEADER = re.compile(r'<header class="site-header">.*?</header>', re.S)


def _markers(session, people: Demo) -> list[str]:  # type: ignore[no-untyped-def]
    """What shows alice's or bob's identity or records in a page: their names and MRNs, and
    the names of alice's tests, the subjects of her threads and the summaries of her plans (read
    as alice herself, so only what she may see)."""
    found = []
    for name in ("alice", "bob"):
        profile = people.user(name).patient
        found += [profile.display_name, profile.medical_record_number]
    alice = people.actor("alice")
    for column, model in (
        (LabResult.test_name, LabResult),
        (Conversation.subject, Conversation),
        (TreatmentPlan.summary, TreatmentPlan),
    ):
        stmt = RoleScope(alice.role).scope(select(column).distinct(), model)
        found += session.scalars(stmt, reader(alice)).all()
    return [m for m in found if m and len(m) > 3]


def _shown(body: str, markers: list[str]) -> list[str]:
    # The header's "Signed in as ..." names the reader to themselves: not a disclosure.
    content = HEADER.sub("", body)
    return [m for m in markers if m in content]


def _requests(app: Flask, area: str, records: dict[str, object]) -> list[tuple[str, str]]:
    found = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith(area + ".") or rule.rule.endswith(".csv"):
                continue  # the CSV export streams; its own tests check its entry
            args = {name: records.get(name, 999_999) for name in rule.arguments}
            if any(not isinstance(v, int) for v in args.values()):
                continue  # signed tokens in the URL: each area's own tests cover them
            url = url_for(rule.endpoint, **args)
            for method in ("GET", "POST"):
                if method in (rule.methods or ()):
                    found.append((method, url))
    return found


@pytest.mark.parametrize("area", list(AREAS))
def test_every_response_that_shows_a_patient_has_its_audit_entry(
    app: Flask,
    client: FlaskClient,
    session,
    as_user,
    people: Demo,
    alice_records: dict[str, object],
    area: str,
) -> None:
    # Arrange
    who = AREAS[area]
    as_user(who)
    records = dict(alice_records)
    if who == "alice":
        mine = records_of(session, people, "alice")
        records.update(plan_id=mine.plan_id, result_id=mine.result_id)
    markers = _markers(session, people)
    token = csrf_token(client, "/account")
    unaudited: list[str] = []
    checked = 0
    # Act
    for method, url in _requests(app, area, records):
        if url == "/logout":
            continue
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": token})
        if response.status_code not in (200, 422) or response.mimetype != "text/html":
            continue  # files: recorded by their own routes (their tests)
        shown = _shown(response.get_data(as_text=True), markers)
        if shown:
            checked += 1
            if not entries_for(session, response):
                unaudited.append(f"{method} {url} ({response.status_code}) shows {shown}")
    # Assert
    assert unaudited == []
    assert checked >= (1 if area == "auth" else 3)


def test_a_refused_form_that_shows_a_thread_is_audited(
    client: FlaskClient, session, as_user, alice_records: dict[str, object]
) -> None:
    as_user("dr_chen")
    response = client.post(
        f"/staff/messages/{alice_records['conversation_id']}/reply",
        data={"body": "", "csrf_token": csrf_token(client, "/staff/patients")},
    )
    assert response.status_code == 422
    assert len(entries_for(session, response)) == 1


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD"])
def test_probes_that_show_nothing_write_no_entry(
    client: FlaskClient, session, as_user, method: str
) -> None:
    as_user("dr_chen")
    count = select(func.count()).select_from(AuditEvent)
    before = session.scalar(count)
    response = client.open("/staff/patients", method=method)
    assert response.status_code in (200, 204)
    assert session.scalar(count) == before


def test_a_redirect_writes_no_read_entry(client: FlaskClient, session, as_user) -> None:
    as_user("alice")
    response = client.get("/")
    assert response.status_code == 302
    assert entries_for(session, response) == []
