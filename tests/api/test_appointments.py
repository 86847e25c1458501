"""Providers, open slots and appointments through the API: the same rules as the pages.

The clock is pinned to Monday 2030-01-07 09:00 UTC, years past the demo's own visits: Dr Chen
keeps the default hours (weekdays 09:00-12:00 and 13:00-17:00, 30-minute slots, no room), so
the open slots are the same on every day the suite runs. Alice's care team is Dr Chen only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.access import unscoped
from portal.db import set_clock
from portal.models import Appointment, AuditAction, AuditOutcome
from tests.api.conftest import Api
from tests.conftest import Demo
from tests.web.audit_support import entries_for

MONDAY_0900 = datetime(2030, 1, 7, 9, tzinfo=UTC)
TUESDAY_0900 = "2030-01-08T09:00:00Z"

People = Callable[[str], Api]


@pytest.fixture(autouse=True)
def _monday() -> None:
    set_clock(lambda: MONDAY_0900)  # the suite's `_restore_clock` puts it back


def _ok(response: TestResponse, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.json


def _refused(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def _uid(people: Demo, name: str) -> int:
    return people.user(name).id


def _pid(people: Demo, name: str) -> int:
    patient = people.user(name).patient
    assert patient is not None
    return patient.id


def _book(api: People, people: Demo, name: str = "alice", **fields: Any) -> TestResponse:
    body = {"providerId": _uid(people, "dr_chen"), "startAt": TUESDAY_0900, **fields}
    return api(name).post("/appointments", json=body)


def _visits_at(session: Session, start: datetime) -> int:
    stmt = select(func.count(Appointment.id)).where(Appointment.start_at == start)
    return int(session.scalar(unscoped(stmt, "test: count the visits at one start")) or 0)


# --- GET /providers ----------------------------------------------------------------------------


def test_a_patient_sees_their_care_team(session: Session, api: People, people: Demo) -> None:
    response = api("alice").get("/providers")

    body = _ok(response)
    assert body["nextCursor"] is None
    (chen,) = body["items"]
    assert chen["userId"] == _uid(people, "dr_chen")
    profile = people.user("dr_chen").provider
    assert profile is not None
    assert chen["id"] == profile.id
    assert chen["displayName"] == profile.display_name
    assert {"specialty", "clinic", "createdAt", "updatedAt"} <= chen.keys()
    (entry,) = entries_for(session, response)
    # What the route declares ("care_team"), whatever records answering it fetched.
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "care_team")
    assert entry.patient_id == _pid(people, "alice")
    assert '"via":"token"' in entry.detail


@pytest.mark.parametrize("name", ["dr_chen", "admin"])
def test_staff_see_every_active_provider(api: People, people: Demo, name: str) -> None:
    body = _ok(api(name).get("/providers"))

    ids = {p["userId"] for p in body["items"]}
    assert {_uid(people, "dr_chen"), _uid(people, "dr_okafor")} <= ids


# --- GET /providers/{id}/slots -----------------------------------------------------------------


def test_a_patient_sees_their_providers_open_slots(api: People, people: Demo) -> None:
    chen = _uid(people, "dr_chen")

    body = _ok(api("alice").get(f"/providers/{chen}/slots?from=2030-01-08&to=2030-01-08"))

    slots = body["items"]
    assert len(slots) == 14  # 6 in the morning, 8 in the afternoon
    assert slots[0] == {
        "startAt": "2030-01-08T09:00:00Z",
        "endAt": "2030-01-08T09:30:00Z",
        "location": None,
    }
    assert slots[-1]["startAt"] == "2030-01-08T16:30:00Z"
    assert body["nextCursor"] is None


def test_the_slots_default_to_two_weeks_from_now(api: People, people: Demo) -> None:
    chen = _uid(people, "dr_chen")

    slots = _ok(api("alice").get(f"/providers/{chen}/slots"))["items"]

    assert slots[0]["startAt"] == "2030-01-07T10:30:00Z"  # more than an hour from now
    assert slots[-1]["startAt"] == "2030-01-18T16:30:00Z"  # the second Friday
    assert len(slots) == 10 * 14 - 3  # ten weekdays; 09:00 to 10:00 today are too soon


def test_a_patient_gets_a_404_for_a_provider_outside_their_care_team(
    session: Session, api: People, people: Demo
) -> None:
    okafor = _uid(people, "dr_okafor")

    _refused(api("alice").get(f"/providers/{okafor}/slots"), 404)
    # Someone who is no provider at all looks the same.
    _refused(api("alice").get(f"/providers/{_uid(people, 'bob')}/slots"), 404)
    # A provider may look at a colleague's slots (to book a patient of both).
    assert _ok(api("dr_chen").get(f"/providers/{okafor}/slots"))["items"]


def test_an_administrator_may_not_ask_for_slots(api: People, people: Demo) -> None:
    _refused(api("admin").get(f"/providers/{_uid(people, 'dr_chen')}/slots"), 403)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("from=2030-01-01&to=2030-02-01", "to", id="32-days"),
        pytest.param("from=2030-01-08&to=2030-01-07", "to", id="to-before-from"),
        pytest.param("from=9999-12-30", "from", id="past-the-last-date"),
        pytest.param("from=2030-13-01", "query.from", id="not-a-date"),
        pytest.param("from=2030-01-08T09:00:00Z", "query.from", id="an-instant"),
        pytest.param("days=3", "query.days", id="unknown-parameter"),
    ],
)
def test_a_window_that_is_not_1_to_31_days_is_a_422(
    api: People, people: Demo, query: str, field: str
) -> None:
    chen = _uid(people, "dr_chen")

    body = _refused(api("alice").get(f"/providers/{chen}/slots?{query}"), 422)

    assert field in body["errors"]


def test_31_days_are_allowed(api: People, people: Demo) -> None:
    chen = _uid(people, "dr_chen")

    _ok(api("alice").get(f"/providers/{chen}/slots?from=2030-01-01&to=2030-01-31"))


# --- POST /appointments and cancelling ---------------------------------------------------------


def test_a_patient_books_then_cancels(session: Session, api: People, people: Demo) -> None:
    alice = api("alice")
    chen = _uid(people, "dr_chen")

    booked = _ok(_book(api, people, reason="Knee pain"), 201)

    assert booked["patientId"] == _pid(people, "alice")
    assert booked["providerId"] == chen  # the provider's user id, as /providers' userId
    assert booked["startAt"] == TUESDAY_0900
    assert booked["endAt"] == "2030-01-08T09:30:00Z"  # from the slot
    assert booked["status"] == "requested"
    assert booked["reason"] == "Knee pain"
    assert {"id", "location", "createdAt", "updatedAt"} <= booked.keys()
    # The slot is taken, and the visit is in alice's list.
    slots = _ok(alice.get(f"/providers/{chen}/slots?from=2030-01-08&to=2030-01-08"))["items"]
    assert TUESDAY_0900 not in {s["startAt"] for s in slots}
    listed = _ok(alice.get("/appointments?from=2030-01-08&to=2030-01-08"))["items"]
    assert [v["id"] for v in listed] == [booked["id"]]

    cancelled = _ok(alice.post(f"/appointments/{booked['id']}/cancel"))

    assert cancelled["id"] == booked["id"]
    assert cancelled["status"] == "cancelled"
    slots = _ok(alice.get(f"/providers/{chen}/slots?from=2030-01-08&to=2030-01-08"))["items"]
    assert TUESDAY_0900 in {s["startAt"] for s in slots}


def test_a_start_that_is_not_an_open_slot_is_a_422_on_start_at(
    session: Session, api: People, people: Demo
) -> None:
    body = _refused(_book(api, people, startAt="2030-01-08T09:15:00Z"), 422)

    assert list(body["errors"]) == ["startAt"]
    assert _visits_at(session, datetime(2030, 1, 8, 9, 15, tzinfo=UTC)) == 0


def test_a_slot_another_patient_holds_is_a_409_just_taken(
    session: Session, api: People, people: Demo
) -> None:
    _ok(_book(api, people, name="bob"), 201)

    body = _refused(_book(api, people), 409)

    assert body["title"] == "Conflict"
    assert body["errors"] == {"startAt": ["That time was just taken; choose another."]}
    assert _visits_at(session, datetime(2030, 1, 8, 9, tzinfo=UTC)) == 1


def test_a_start_without_a_time_zone_is_a_422(api: People, people: Demo) -> None:
    body = _refused(_book(api, people, startAt="2030-01-08T09:00:00"), 422)

    assert "body.startAt" in body["errors"]


def test_a_patient_books_only_with_their_care_team(api: People, people: Demo) -> None:
    body = _refused(_book(api, people, providerId=_uid(people, "dr_okafor")), 422)
    assert list(body["errors"]) == ["providerId"]
    # A user id that is no provider's is refused the same way.
    body = _refused(_book(api, people, providerId=_uid(people, "bob")), 422)
    assert list(body["errors"]) == ["providerId"]


def test_a_patient_books_only_for_themself(api: People, people: Demo) -> None:
    _refused(_book(api, people, patientId=_pid(people, "bob")), 404)


def test_a_provider_books_for_a_patient_of_theirs(api: People, people: Demo) -> None:
    booked = _ok(_book(api, people, "dr_chen", patientId=_pid(people, "alice")), 201)

    assert booked["status"] == "scheduled"
    assert booked["patientId"] == _pid(people, "alice")


def test_a_provider_must_name_the_patient(api: People, people: Demo) -> None:
    body = _refused(_book(api, people, "dr_chen"), 422)

    assert list(body["errors"]) == ["patientId"]


def test_dr_okafor_cannot_book_for_alice(session: Session, api: People, people: Demo) -> None:
    response = _book(
        api,
        people,
        "dr_okafor",
        patientId=_pid(people, "alice"),
        providerId=_uid(people, "dr_okafor"),
    )

    _refused(response, 404)
    assert _visits_at(session, datetime(2030, 1, 8, 9, tzinfo=UTC)) == 0


def test_an_administrator_may_not_book(api: People, people: Demo) -> None:
    _refused(_book(api, people, "admin", patientId=_pid(people, "alice")), 403)


def test_an_end_or_place_sent_must_be_the_slots(
    session: Session, api: People, people: Demo
) -> None:
    body = _refused(_book(api, people, endAt="2030-01-08T10:00:00Z"), 422)
    assert list(body["errors"]) == ["endAt"]
    body = _refused(_book(api, people, location="Room 12"), 422)
    assert list(body["errors"]) == ["location"]
    # Refused with its booking: nothing was kept.
    assert _visits_at(session, datetime(2030, 1, 8, 9, tzinfo=UTC)) == 0

    _ok(_book(api, people, endAt="2030-01-08T10:30:00+01:00"), 201)  # the same moment


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"endsAt": TUESDAY_0900}, "body.endsAt", id="unknown-field"),
        pytest.param({"providerId": 0}, "body.providerId", id="no-such-id"),
        pytest.param({"reason": "x" * 501}, "body.reason", id="reason-too-long"),
        pytest.param({"startAt": "next tuesday"}, "body.startAt", id="not-an-instant"),
        pytest.param({"startAt": "9999-12-31T23:00:00Z"}, "startAt", id="the-last-hour"),
    ],
)
def test_a_booking_that_does_not_validate_is_a_422(
    api: People, people: Demo, fields: dict[str, Any], field: str
) -> None:
    body = _refused(_book(api, people, **fields), 422)

    assert field in body["errors"]


def test_a_retried_booking_books_once(session: Session, api: People, people: Demo) -> None:
    alice = api("alice")
    body = {"providerId": _uid(people, "dr_chen"), "startAt": TUESDAY_0900}
    key = {"Idempotency-Key": "book-tuesday-0900"}

    first = _ok(alice.post("/appointments", json=body, headers=key), 201)
    again = alice.post("/appointments", json=body, headers=key)

    assert _ok(again, 201) == first
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _visits_at(session, datetime(2030, 1, 8, 9, tzinfo=UTC)) == 1


def test_a_provider_cancels_with_a_reason(session: Session, api: People, people: Demo) -> None:
    booked = _ok(_book(api, people), 201)
    chen = api("dr_chen")

    body = _refused(chen.post(f"/appointments/{booked['id']}/cancel", json={}), 422)
    assert list(body["errors"]) == ["reason"]

    done = _ok(chen.post(f"/appointments/{booked['id']}/cancel", json={"reason": "Sick leave"}))
    assert done["status"] == "cancelled"
    # The patient reads the clinic's reason in their own list
    mine = _ok(api("alice").get("/appointments", query_string={"status": "cancelled"}))
    assert {v["id"]: v["cancelReason"] for v in mine["items"]}[booked["id"]] == "Sick leave"
    visit = session.scalar(
        unscoped(select(Appointment).where(Appointment.id == booked["id"]), "test: read back")
    )
    assert visit is not None
    assert visit.cancel_reason == "Sick leave"


def test_a_retried_cancellation_answers_as_the_first_did(api: People, people: Demo) -> None:
    # A retry after a lost answer: the visit is cancelled once, and the retry is not refused
    # as "already cancelled".
    booked = _ok(_book(api, people), 201)
    chen = api("dr_chen")
    key = {"Idempotency-Key": "cancel-sick-leave"}
    url = f"/appointments/{booked['id']}/cancel"

    first = _ok(chen.post(url, json={"reason": "Sick leave"}, headers=key))
    again = chen.post(url, json={"reason": "Sick leave"}, headers=key)

    assert _ok(again) == first
    assert again.headers["Idempotent-Replayed"] == "true"


def test_only_the_visits_participants_may_cancel_it(api: People, people: Demo) -> None:
    booked = _ok(_book(api, people), 201)

    for name in ("bob", "dr_okafor", "admin"):
        _refused(api(name).post(f"/appointments/{booked['id']}/cancel", json={"reason": "x"}), 404)
    _refused(api("alice").post("/appointments/999999999/cancel"), 404)


def test_a_patient_cannot_cancel_within_24_hours(api: People, people: Demo) -> None:
    booked = _ok(_book(api, people), 201)
    set_clock(lambda: datetime(2030, 1, 7, 10, tzinfo=UTC))  # 23 hours before

    body = _refused(api("alice").post(f"/appointments/{booked['id']}/cancel"), 422)

    assert list(body["errors"]) == ["status"]


# --- GET /appointments -------------------------------------------------------------------------


def _three_visits(api: People, people: Demo) -> list[dict[str, Any]]:
    """Alice's visits on Tuesday 09:00 (cancelled), Tuesday 14:00 and Wednesday 09:00."""
    made = [
        _ok(_book(api, people, startAt=start), 201)
        for start in (TUESDAY_0900, "2030-01-08T14:00:00Z", "2030-01-09T09:00:00Z")
    ]
    _ok(api("alice").post(f"/appointments/{made[0]['id']}/cancel"))
    return made


def test_the_list_filters_by_window_and_status(session: Session, api: People, people: Demo) -> None:
    tuesday, afternoon, wednesday = (v["id"] for v in _three_visits(api, people))
    alice = api("alice")

    def ids(query: str) -> list[int]:
        return [v["id"] for v in _ok(alice.get(f"/appointments?{query}"))["items"]]

    assert ids("from=2030-01-08&to=2030-01-08") == [tuesday, afternoon]
    assert ids("from=2030-01-08T12:00:00Z&to=2030-01-09T09:00:00Z") == [afternoon]  # to: excluded
    assert ids("from=2030-01-08&status=requested") == [afternoon, wednesday]
    assert ids("from=2030-01-08&status=cancelled") == [tuesday]
    assert ids("from=2030-01-08T10:00:00%2B01:00&to=2030-01-08") == [tuesday, afternoon]
    assert ids("to=9999-12-31&from=2030-01-09") == [wednesday]
    assert tuesday in ids("from=0001-01-01&to=2030-01-08&limit=100")
    # Dr Chen's schedule has them too; Dr Okafor's does not.
    chen = _ok(api("dr_chen").get("/appointments?from=2030-01-08&to=2030-01-09"))["items"]
    assert {v["id"] for v in chen} == {tuesday, afternoon, wednesday}
    assert _ok(api("dr_okafor").get("/appointments?from=2030-01-08&to=2030-01-09"))["items"] == []


def test_the_list_pages_with_a_cursor(api: People, people: Demo) -> None:
    made = [v["id"] for v in _three_visits(api, people)]
    alice = api("alice")

    first = _ok(alice.get("/appointments?from=2030-01-08&limit=2"))
    rest = _ok(alice.get(f"/appointments?from=2030-01-08&limit=2&cursor={first['nextCursor']}"))

    assert [v["id"] for v in first["items"] + rest["items"]] == made
    assert rest["nextCursor"] is None


def test_reading_the_list_is_audited(session: Session, api: People, people: Demo) -> None:
    response = api("alice").get("/appointments")

    _ok(response)
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "appointment_list")
    assert entry.outcome is AuditOutcome.SUCCESS
    assert '"via":"token"' in entry.detail


def test_an_administrator_has_no_appointments_list(api: People) -> None:
    _refused(api("admin").get("/appointments"), 403)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("status=booked", "query.status", id="bad-status"),
        pytest.param("from=2030-01-08T09:00:00", "query.from", id="no-time-zone"),
        pytest.param("to=tomorrow", "query.to", id="not-a-date"),
        pytest.param("to=9999-12-31T23:00:00-05:00", "query.to", id="past-the-last-instant"),
        pytest.param("cursor=bm90LWEtY3Vyc29y", "cursor", id="bad-cursor"),
        pytest.param("limit=0", "query.limit", id="limit-0"),
        pytest.param("upcoming=1", "query.upcoming", id="unknown-parameter"),
    ],
)
def test_a_list_query_that_does_not_validate_is_a_422(api: People, query: str, field: str) -> None:
    body = _refused(api("alice").get(f"/appointments?{query}"), 422)

    assert field in body["errors"]


# --- Answering requests and moving visits (the same verbs as the pages) ----------------------


def test_a_provider_declines_and_the_patients_app_reads_why(api: People, people: Demo) -> None:
    booked = _ok(_book(api, people), 201)
    chen = api("dr_chen")
    path = f"/appointments/{booked['id']}/decline"

    assert _refused(chen.post(path, json={}), 422)["errors"].keys() == {"body.reason"}
    _refused(api("dr_okafor").post(path, json={"reason": "No"}), 404)
    declined = _ok(chen.post(path, json={"reason": "Away that week"}))

    assert (declined["status"], declined["cancelReason"]) == ("cancelled", "Away that week")
    (mine,) = _ok(api("alice").get("/appointments?from=2030-01-08&to=2030-01-08"))["items"]
    assert mine["cancelReason"] == "Away that week"


def test_a_provider_confirms_or_proposes_another_time(api: People, people: Demo) -> None:
    first = _ok(_book(api, people), 201)
    second = _ok(_book(api, people, startAt="2030-01-08T10:00:00Z"), 201)
    chen = api("dr_chen")

    assert _ok(chen.post(f"/appointments/{first['id']}/confirm"))["status"] == "scheduled"
    _refused(api("alice").post(f"/appointments/{second['id']}/confirm"), 403)
    taken = chen.post(f"/appointments/{second['id']}/propose", json={"startAt": TUESDAY_0900})
    _refused(taken, 409)
    moved = _ok(
        chen.post(f"/appointments/{second['id']}/propose", json={"startAt": "2030-01-08T11:00:00Z"})
    )
    # The proposal waits for the patient: still requested, out of the provider's hands.
    assert (moved["startAt"], moved["status"]) == ("2030-01-08T11:00:00Z", "requested")
    assert moved["proposedBy"] == people.user("dr_chen").id
    assert "status" in _refused(chen.post(f"/appointments/{second['id']}/confirm"), 422)["errors"]
    _refused(chen.post(f"/appointments/{second['id']}/accept"), 403)  # the patient answers
    accepted = _ok(api("alice").post(f"/appointments/{second['id']}/accept"))
    assert (accepted["startAt"], accepted["status"]) == ("2030-01-08T11:00:00Z", "scheduled")
    _refused(api("alice").post(f"/appointments/{first['id']}/accept"), 422)  # nothing proposed


def test_a_patient_moves_a_visit(session: Session, api: People, people: Demo) -> None:
    booked = _ok(_book(api, people), 201)
    path = f"/appointments/{booked['id']}/reschedule"

    _refused(api("alice").post(path, json={"startAt": "2030-01-08T09:10:00Z"}), 422)
    moved = _ok(api("alice").post(path, json={"startAt": "2030-01-08T13:00:00Z"}), 201)

    assert moved["id"] != booked["id"]
    assert (moved["startAt"], moved["status"]) == ("2030-01-08T13:00:00Z", "requested")
    listed = _ok(api("alice").get("/appointments?from=2030-01-08&to=2030-01-08&status=cancelled"))
    assert [v["cancelReason"] for v in listed["items"]] == ["Moved to another time"]


def test_moving_a_confirmed_visit_keeps_it_until_the_new_time_is_confirmed(
    api: People, people: Demo
) -> None:
    # dr.chen takes requests: alice's confirmed Tuesday 09:00 visit, which she asks to move.
    booked = _ok(_book(api, people), 201)
    chen, alice = api("dr_chen"), api("alice")
    _ok(chen.post(f"/appointments/{booked['id']}/confirm"))
    asked = _ok(
        alice.post(
            f"/appointments/{booked['id']}/reschedule", json={"startAt": "2030-01-08T13:00:00Z"}
        ),
        201,
    )
    assert (asked["status"], asked["replacesId"]) == ("requested", booked["id"])

    def status_of(visit_id: int) -> str:
        items = _ok(alice.get("/appointments?from=2030-01-08&to=2030-01-08&limit=100"))["items"]
        return next(v["status"] for v in items if v["id"] == visit_id)

    assert status_of(booked["id"]) == "scheduled"  # the patient still has her visit
    # Declined: the old visit still stands.
    _ok(chen.post(f"/appointments/{asked['id']}/decline", json={"reason": "Full that day"}))
    assert status_of(booked["id"]) == "scheduled"
    assert status_of(asked["id"]) == "cancelled"

    # Asked again and confirmed: now the old visit is cancelled, as moved.
    again = _ok(
        alice.post(
            f"/appointments/{booked['id']}/reschedule", json={"startAt": "2030-01-08T13:00:00Z"}
        ),
        201,
    )
    assert status_of(booked["id"]) == "scheduled"
    _ok(chen.post(f"/appointments/{again['id']}/confirm"))
    assert (status_of(booked["id"]), status_of(again["id"])) == ("cancelled", "scheduled")
    old = next(
        v
        for v in _ok(alice.get("/appointments?from=2030-01-08&to=2030-01-08&limit=100"))["items"]
        if v["id"] == booked["id"]
    )
    assert old["cancelReason"] == "Moved to another time"
