"""`GET /events/<id>`: what a page fetches when its socket names an event. It shows the
notification's sentence (it names a test or a subject), so only to its reader, and audited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import AuditAction, EventType, Notification
from portal.services import notifications
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
