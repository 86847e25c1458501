"""A clinician leaving a patient's care team leaves no thread that nobody can read (issue 12):
each thread they were on goes to another member of the care team, or, with nobody left, is
closed for replies with a word to the patient; unread counts move with the messages."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.models import ConversationParticipant, EventType, Message, Notification
from portal.services import accounts, messaging, notifications
from portal.services.messaging import MessageError
from tests.conftest import Demo, post


def _write_to_chen(session: Session, people: Demo) -> Message:
    alice = people.actor("alice")
    message = messaging.start_conversation(
        session,
        alice,
        patient_id=alice.patient_id,
        recipient_user_id=people.user("dr_chen").id,
        subject="Side effects",
        body="Since Monday I feel dizzy.",
    )
    session.commit()
    return message


def _unread_about(session: Session, user_id: int, patient_id: int) -> int:
    stmt = select(func.count(Notification.id)).where(
        Notification.user_id == user_id,
        Notification.patient_id == patient_id,
        Notification.read_at.is_(None),
    )
    return int(session.scalar(unscoped(stmt, "test: badge")) or 0)


def _leave(session: Session, people: Demo, name: str) -> None:
    provider = people.user(name).provider
    assert provider is not None
    accounts.unassign_provider(
        session,
        people.actor("admin"),
        patient_id=people.actor("alice").patient_id,
        provider_id=provider.id,
    )
    session.commit()


def test_a_thread_goes_to_the_remaining_care_team_member(session: Session, people: Demo) -> None:
    # Arrange: alice writes to dr.chen; dr.okafor joins her care team; dr.chen leaves it
    message = _write_to_chen(session, people)
    alice, chen, okafor = (people.user(n) for n in ("alice", "dr_chen", "dr_okafor"))
    patient_id = people.actor("alice").patient_id
    assert okafor.provider is not None
    accounts.assign_provider(
        session, people.actor("admin"), patient_id=patient_id, provider_id=okafor.provider.id
    )
    session.commit()
    okafor_before = notifications.nav_state(session, people.actor("dr_okafor")).unread
    assert _unread_about(session, chen.id, patient_id) >= 1
    # Act
    _leave(session, people, "dr_chen")
    # Assert: dr.okafor holds the thread and its unread message; dr.chen's badge lets go of it
    session.expire_all()
    on_thread = set(
        session.scalars(
            select(ConversationParticipant.user_id).where(
                ConversationParticipant.conversation_id == message.conversation_id
            )
        )
    )
    assert on_thread == {alice.id, okafor.id}
    assert (
        session.scalar(
            unscoped(select(Message.recipient_id).where(Message.id == message.id), "test")
        )
        == okafor.id
    )
    assert _unread_about(session, chen.id, patient_id) == 0
    okafor_after = notifications.nav_state(session, people.actor("dr_okafor")).unread
    created = EventType.MESSAGE_CREATED
    assert okafor_after.get(created, 0) == okafor_before.get(created, 0) + 1
    okafor_inbox = messaging.team_inbox(session, people.actor("dr_okafor"), limit=100).rows
    assert message.conversation_id in {row.conversation.id for row in okafor_inbox}
    # ... and alice's next reply reaches him
    reply = messaging.reply(session, people.actor("alice"), message.conversation_id, body="Still.")
    assert reply.recipient_id == okafor.id


def test_a_thread_with_nobody_left_is_closed_with_a_word_to_the_patient(
    session: Session, people: Demo, client: FlaskClient, as_user
) -> None:
    # Arrange: alice writes to dr.chen, her only clinician, who then leaves her care team
    message = _write_to_chen(session, people)
    patient_id = people.actor("alice").patient_id
    team = messaging.care_team(session, people.actor("alice"), patient_id)
    assert [p.user_id for p in team] == [people.user("dr_chen").id]
    # Act
    _leave(session, people, "dr_chen")
    # Assert: no reply goes into it, the patient reads why, dr.chen's badge lets go
    with pytest.raises(MessageError, match="closed"):
        messaging.reply(session, people.actor("alice"), message.conversation_id, body="Hello?")
    session.rollback()
    assert _unread_about(session, people.user("dr_chen").id, patient_id) == 0
    page = as_user("alice").get(f"/my/messages/{message.conversation_id}").get_data(as_text=True)
    assert "closed for replies" in page
    assert "Send reply" not in page
    assert "Dr Mei Chen" in page  # still named as who the thread was with
    refused = post(client, f"/my/messages/{message.conversation_id}/reply", {"body": "Hello?"})
    assert refused.status_code == 422


def _total_unread_in_inbox(session: Session, people: Demo, name: str) -> int:
    page = messaging.inbox(session, people.actor(name), limit=100)
    assert page.next_cursor is None
    return sum(t.unread for t in page.rows)


def test_a_provider_back_on_the_care_team_gets_their_threads_and_a_true_badge(
    session: Session, people: Demo
) -> None:
    # Arrange: alice writes twice to dr.chen, her only clinician, who then leaves the team
    message = _write_to_chen(session, people)
    messaging.reply(session, people.actor("alice"), message.conversation_id, body="Still dizzy.")
    session.commit()
    _leave(session, people, "dr_chen")
    chen = people.user("dr_chen")
    assert chen.provider is not None
    # Act: the care team takes dr.chen back (no request: the admin did not bring chen in)
    assigned = accounts.assign_provider(
        session,
        None,  # the operator's command line, as the demo's assignments
        patient_id=people.actor("alice").patient_id,
        provider_id=chen.provider.id,
    )
    session.commit()
    assert assigned is not None
    # Assert: the thread is open again, both ways
    messaging.reply(session, people.actor("alice"), message.conversation_id, body="Hello again")
    messaging.reply(session, people.actor("dr_chen"), message.conversation_id, body="I am back.")
    session.commit()
    # ... and the Messages badge counts what the inbox shows
    nav = notifications.nav_state(session, people.actor("dr_chen"))
    inbox = _total_unread_in_inbox(session, people, "dr_chen")
    assert inbox > 0
    assert nav.unread.get(EventType.MESSAGE_CREATED, 0) == inbox
