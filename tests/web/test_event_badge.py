"""`GET /events/<id>`: what a page fetches when its socket names an event. It shows the
notification's sentence (it names a test or a subject), so only to its reader, and audited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import AuditAction, EventType, Notification
from portal.services import accounts, notifications
from tests.conftest import Demo
from tests.web.audit_support import entries_for


def _event_for_alice(session: Session, people: Demo) -> Notification:
    alice = people.user("alice")
    assert alice.patient is not None
    notifications.stage(
        session,
        [alice.id],
        type=EventType.LAB_RESULT_PUBLISHED,
        entity_id=1,
        patient_id=alice.patient.id,
        text="New lab result: Hemoglobin A1c",
    )
    session.commit()
    stmt = select(Notification).where(Notification.user_id == alice.id)
    found = session.scalars(unscoped(stmt.order_by(Notification.id.desc()), "test")).first()
    assert found is not None
    return found


def test_the_reader_gets_the_badge_and_the_sentence_and_the_view_is_audited(
    as_user, session: Session, people: Demo
) -> None:
    event = _event_for_alice(session, people)
    response = as_user("alice").get(f"/events/{event.id}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert 'data-announce="New lab result: Hemoglobin A1c"' in response.get_data(as_text=True)
    [entry] = entries_for(session, response)
    assert (entry.action, entry.entity_type, entry.entity_id, entry.patient_id) == (
        AuditAction.VIEW,
        "notification",
        str(event.id),
        event.patient_id,
    )


def test_someone_elses_event_is_not_there(as_user, session: Session, people: Demo) -> None:
    event = _event_for_alice(session, people)
    response = as_user("bob").get(f"/events/{event.id}")
    assert response.status_code == 404
    assert "Hemoglobin" not in response.get_data(as_text=True)


def test_a_provider_taken_off_the_care_team_no_longer_reads_its_events(
    as_user, session: Session, people: Demo
) -> None:
    # L3 (docs/security.md): the sentence names the patient's test; once off her team, no more
    alice = people.user("alice")
    chen = people.user("dr_chen")
    assert alice.patient is not None
    assert chen.provider is not None
    notifications.stage(
        session,
        [chen.id],
        type=EventType.LAB_RESULT_PUBLISHED,
        entity_id=1,
        patient_id=alice.patient.id,
        text="Alice's result: Hemoglobin A1c",
    )
    session.commit()
    stmt = select(Notification).where(Notification.user_id == chen.id)
    event = session.scalars(unscoped(stmt.order_by(Notification.id.desc()), "test")).first()
    assert event is not None
    client = as_user("dr_chen")
    assert client.get(f"/events/{event.id}").status_code == 200
    # Act: the admin takes Dr Chen off alice's care team
    accounts.unassign_provider(
        session, people.actor("admin"), patient_id=alice.patient.id, provider_id=chen.provider.id
    )
    session.commit()
    # Assert
    response = client.get(f"/events/{event.id}")
    assert response.status_code == 404
    assert "Hemoglobin" not in response.get_data(as_text=True)
