"""The care team's inbox: every thread about the provider's patients, replies, receipts."""

from __future__ import annotations

import re
from io import BytesIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import RoleScope, reader, unscoped
from portal.demo import MINIMAL_PDF
from portal.models import Attachment, Conversation, Message, MessageStatus
from portal.services import messaging
from tests.conftest import Demo, login, post


def _alice_thread(session: Session, people: Demo) -> Conversation:
    row = session.scalar(
        unscoped(
            select(Conversation).where(Conversation.patient_id == people.user("alice").patient.id),
            "test",
        )
    )
    assert row is not None
    return row


def test_threads_with_unread_messages_come_first(session: Session, as_user, people: Demo) -> None:
    # Arrange: bob writes; alice's older thread is read
    bob = people.actor("bob")
    messaging.start_conversation(
        session,
        bob,
        patient_id=bob.patient_id or 0,
        recipient_user_id=people.user("dr_chen").id,
        subject="Knee pain",
        body="It hurts",
    )
    session.commit()
    # Act
    html = as_user("dr_chen").get("/staff/messages").get_data(as_text=True)
    # Assert
    assert html.index("Knee pain") < html.index("Question about my cholesterol results")
    assert "1 unread" in html


def test_opening_a_thread_marks_it_read_and_shows_receipts(
    session: Session, as_user, people: Demo
) -> None:
    thread = _alice_thread(session, people)
    messaging.reply(session, people.actor("alice"), thread.id, body="One more question")
    session.commit()
    client = as_user("dr_chen")
    html = client.get(f"/staff/messages/{thread.id}").get_data(as_text=True)
    assert "One more question" in html
    session.expire_all()
    statuses = session.scalars(
        unscoped(
            select(Message.status).where(
                Message.conversation_id == thread.id,
                Message.recipient_id == people.user("dr_chen").id,
            ),
            "test",
        )
    ).all()
    assert set(statuses) == {MessageStatus.READ}
    # dr.chen's earlier reply was never opened by alice in the demo
    assert "Not read yet" in html


def test_a_reply_with_an_attachment_reaches_the_patient(
    app, session: Session, as_user, people: Demo
) -> None:
    client = as_user("dr_chen")
    thread = _alice_thread(session, people)
    response = post(
        client,
        f"/staff/messages/{thread.id}/reply",
        {"body": "Here is the leaflet.", "attachment": (BytesIO(MINIMAL_PDF), "leaflet.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    alice = app.test_client()
    login(alice, "alice@example.org")
    assert "Here is the leaflet." in alice.get(f"/my/messages/{thread.id}").get_data(as_text=True)
    files = session.scalars(
        unscoped(select(Attachment.filename).where(Attachment.patient_id == thread.patient_id), "t")
    ).all()
    assert "leaflet.pdf" in files


def test_an_empty_reply_is_refused(session: Session, as_user, people: Demo) -> None:
    thread = _alice_thread(session, people)
    response = post(as_user("dr_chen"), f"/staff/messages/{thread.id}/reply", {"body": ""})
    assert response.status_code == 422


def test_a_provider_starts_a_thread_with_an_assigned_patient(as_user, people: Demo) -> None:
    client = as_user("dr_chen")
    response = post(
        client,
        f"/staff/patients/{people.user('bob').patient.id}/messages/new",
        {"subject": "Your results", "body": "Please book a visit."},
    )
    assert response.status_code == 303
    assert "Please book a visit." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_write_to_patient_posted_twice_opens_one_thread(
    session: Session, as_user, people: Demo
) -> None:
    # Arrange: the form as rendered carries its key, and the provider double-clicks Send
    client = as_user("dr_chen")
    bob = people.user("bob").patient
    form = client.get(f"/staff/patients/{bob.id}/messages/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="(\w+)"', form)
    assert key, "the form carries no idempotency key"
    data = {"subject": "Twice", "body": "Sent once.", "idempotency_key": key.group(1)}
    # Act
    first = post(client, f"/staff/patients/{bob.id}/messages/new", data)
    again = post(client, f"/staff/patients/{bob.id}/messages/new", data)
    # Assert
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    chen = people.actor("dr_chen")
    stmt = select(func.count()).select_from(Conversation).where(Conversation.subject == "Twice")
    session.expire_all()
    assert session.scalar(RoleScope(chen.role).scope(stmt, Conversation), reader(chen)) == 1
