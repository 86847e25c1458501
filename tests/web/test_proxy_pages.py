"""A parent opens a teenager's record from the switcher: every page says whose record it is,
offers only what the grant opens, leaves out what a parent never sees, and closes at once when
the grant ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.db import set_clock
from portal.models import Role
from portal.services import proxies
from tests.conftest import SUITE_CLOCK, Demo, post
from tests.unit.test_proxy_access import TODAY, _child, _grant
from tests.web.audit_support import entries_for


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    set_clock(lambda: TODAY)
    yield
    set_clock(SUITE_CLOCK)


def test_a_parent_opens_a_teenagers_record_within_the_grant_and_loses_it_when_it_ends(
    as_user, session: Session, people: Demo
) -> None:
    # Arrange: Sam, 14, with an ordinary and a confidential result; alice holds a parent's grant.
    child = _child(session, people, 14)
    grant = _grant(session, people, child.patient_id)
    session.commit()
    client = as_user("alice")
    name = "Sam Martin (14)"

    # Act: she opens his record from the switcher on her dashboard.
    own = client.get("/my/")
    chosen = post(client, "/my/record", {"patient_id": str(child.patient_id)})
    dashboard = client.get("/my/").get_data(as_text=True)
    results = client.get("/my/lab-results")

    # Assert: the page says whose record it is and offers only what the grant opens.
    assert name in own.get_data(as_text=True)  # in the switcher
    assert chosen.status_code == 303
    assert f"You are looking at {name}" in dashboard
    assert ">Lab results<" in dashboard
    assert ">Messages<" not in dashboard  # a teenager's messages are their own
    assert ">Profile<" not in dashboard  # the account stays hers, the record his
    page = results.get_data(as_text=True)
    assert results.status_code == 200
    assert "Glucose" in page
    assert "BRCA1" not in page  # a confidential result: never a parent's to see
    assert client.get(f"/my/lab-results/{child.confidential.id}").status_code == 404
    assert client.get("/my/messages").status_code == 404
    (entry,) = entries_for(session, results)
    assert (entry.actor_id, entry.patient_id) == (people.user("alice").id, child.patient_id)
    assert f'"proxy_grant":{grant.id}' in entry.detail
    # Someone else's record is not hers to open.
    refused = post(client, "/my/record", {"patient_id": str(people.user("bob").patient.id)})
    assert refused.status_code == 404

    # The grant ends (Sam removes it): her next request reads as herself, to whom it is missing.
    proxies.end(
        session, Actor(child.user_id, Role.PATIENT, patient_id=child.patient_id), grant.id, ""
    )
    session.commit()
    assert client.get(f"/my/lab-results/{child.ordinary.id}").status_code == 404
    assert "You are looking at" not in client.get("/my/").get_data(as_text=True)


def test_back_to_ones_own_record(as_user, session: Session, people: Demo) -> None:
    child = _child(session, people, 8)
    _grant(session, people, child.patient_id)
    session.commit()
    client = as_user("alice")
    post(client, "/my/record", {"patient_id": str(child.patient_id)})
    assert "You are looking at" in client.get("/my/").get_data(as_text=True)

    post(client, "/my/record", {"patient_id": ""})

    page = client.get("/my/").get_data(as_text=True)
    assert "You are looking at" not in page
    assert "Hello, Alice Martin" in page
    assert ">Profile<" in page


def test_a_patient_sees_who_can_see_their_record_and_removes_them(
    client, as_user, session: Session, people: Demo
) -> None:
    # The demo's grant: dan lets carol open his lab results and appointments.
    dan = people.user("dan").patient.id
    carol = as_user("carol")
    post(carol, "/my/record", {"patient_id": str(dan)})
    assert carol.get("/my/lab-results").status_code == 200
    (held,) = proxies.held_records(session, people.actor("carol"))
    post(carol, "/logout")

    # Bob cannot remove anyone from Dan's record: not his (404), and carol keeps it.
    bobs = as_user("bob")
    assert post(bobs, f"/my/proxies/{held.delegation.grant_id}/remove").status_code == 404
    assert proxies.held_records(session, people.actor("carol")) != []
    post(bobs, "/logout")

    dans = as_user("dan")
    profile = dans.get("/my/profile").get_data(as_text=True)
    assert "Who can see my record" in profile
    assert "Carol Jensen" in profile
    assert "appointments, lab results" in profile
    removed = post(dans, f"/my/proxies/{held.delegation.grant_id}/remove")
    assert removed.status_code == 303
    assert "Nobody but you and your care team" in dans.get("/my/profile").get_data(as_text=True)
    assert proxies.held_records(session, people.actor("carol")) == []
