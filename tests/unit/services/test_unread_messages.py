"""One meaning of an unread message (`messaging.unread_to`): sent to me and not read by me.
Every count and mark agrees with it: a thread's summary, the team inbox, the staff list's
attention, "anything to mark read" on opening a thread, and marking it read (issue 20)."""

from __future__ import annotations

from portal.models import EventType, Message
from portal.services import messaging, notifications, patients
from tests.unit.services.conftest import World


def _write_to_chen(w: World) -> Message:
    return messaging.start_conversation(
        w.session,
        w.actor("alice"),
        patient_id=None,
        recipient_user_id=w.people.user("dr_chen").id,
        subject="Dizzy",
        body="Since Monday.",
    )


def _team_inbox_unread(w: World, conversation_id: int) -> int:
    rows = messaging.team_inbox(w.session, w.actor("dr_chen"), limit=100).rows
    return next(t.unread for t in rows if t.conversation.id == conversation_id)


def _attention(w: World) -> int:
    found = patients.attention_for(w.session, w.actor("dr_chen"), [w.patient_id])
    return found[w.patient_id].unread_messages


def test_a_message_is_unread_for_its_recipient_only_until_they_read_it(world: World) -> None:
    # Arrange
    w = world
    chen, alice = w.actor("dr_chen"), w.actor("alice")
    attention_before = _attention(w)
    # Act: alice writes to dr.chen
    message = _write_to_chen(w)
    thread = message.conversation_id
    # Assert: unread for dr.chen everywhere it is counted, never for alice who wrote it
    assert messaging.thread_summary(w.session, chen, thread).unread == 1
    assert messaging.thread_summary(w.session, alice, thread).unread == 0
    assert _team_inbox_unread(w, thread) == 1
    assert _attention(w) == attention_before + 1
    assert messaging.thread_unread(w.session, chen, thread)
    # Act: alice opening her own thread marks nothing of dr.chen's read
    assert messaging.mark_thread_read(w.session, alice, thread) == 0
    assert messaging.thread_summary(w.session, chen, thread).unread == 1
    # Act: dr.chen opens it
    assert messaging.mark_thread_read(w.session, chen, thread) == 1
    # Assert: read everywhere, and nothing is left to mark
    w.session.expire_all()
    assert messaging.thread_summary(w.session, chen, thread).unread == 0
    assert _team_inbox_unread(w, thread) == 0
    assert _attention(w) == attention_before
    assert not messaging.thread_unread(w.session, chen, thread)
    assert messaging.mark_thread_read(w.session, chen, thread) == 0
    assert not notifications.has_unread(
        w.session, chen, type=EventType.MESSAGE_CREATED, entity_id=thread
    )
