"""Messages: the inbox, reading a thread, replies that are sent once, attachments checked by
content and returned byte for byte, and bodies that round-trip exactly and show as text."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.access import RoleScope, reader
from portal.models import AuditAction, Conversation, Message, MessageStatus
from tests.conftest import csrf_token, post
from tests.web.audit_support import entries_for
from tests.web.patient_records import records_of

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _messages_in(session, people, conversation_id: int) -> list[Message]:
    stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    session.expire_all()
    alice = people.actor("alice")
    return list(session.scalars(RoleScope(alice.role).scope(stmt, Message), reader(alice)))


def test_the_inbox_shows_subject_participants_and_unread_count(as_user) -> None:
    page = as_user("alice").get("/my/messages").get_data(as_text=True)
    assert "Question about my cholesterol results" in page
    assert "With Dr Mei Chen ·" in page
    assert '<span class="badge">1 unread</span>' in page


def test_opening_a_thread_marks_it_read_and_shows_read_receipts(as_user, session, people):
    # Arrange
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    assert 'class="badge">1<' in client.get("/my/messages").get_data(as_text=True)
    # Act
    page = client.get(f"/my/messages/{mine.conversation_id}").get_data(as_text=True)
    # Assert
    assert "Read " in page  # dr.chen read alice's first message
    statuses = {m.status for m in _messages_in(session, people, mine.conversation_id)}
    assert statuses == {MessageStatus.READ}
    inbox = client.get("/my/messages").get_data(as_text=True)
    assert "unread" not in inbox


def test_a_reply_posted_twice_with_one_key_is_sent_once(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    before = len(_messages_in(session, people, mine.conversation_id))
    data = {"body": "Thank you, doctor.", "idempotency_key": "reply-key-1"}
    first = post(client, f"/my/messages/{mine.conversation_id}/reply", data)
    again = post(client, f"/my/messages/{mine.conversation_id}/reply", data)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert len(_messages_in(session, people, mine.conversation_id)) == before + 1


def test_a_resent_reply_says_message_sent_once(as_user, session, people) -> None:
    # Arrange: one rendering of the form (its CSRF token), sent twice before the page loads
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    token = csrf_token(client, "/")
    data = {"body": "Sent once.", "idempotency_key": "resend-1", "csrf_token": token}
    # Act
    client.post(f"/my/messages/{mine.conversation_id}/reply", data=data)
    again = client.post(f"/my/messages/{mine.conversation_id}/reply", data=data)
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    # Assert: one message, one notice (the resend did nothing new)
    assert page.count("Message sent.") == 1


def test_a_new_thread_posted_twice_with_one_key_creates_one_thread(as_user, session, people):
    client = as_user("alice")
    chen = people.user("dr_chen")
    data = {"to": str(chen.id), "subject": "Refill", "body": "Please.", "idempotency_key": "nk"}
    alice = people.actor("alice")
    count = RoleScope(alice.role).scope(
        select(func.count()).select_from(Conversation), Conversation
    )
    before = session.scalar(count, reader(alice))
    first = post(client, "/my/messages/new", data)
    again = post(client, "/my/messages/new", data)
    assert first.headers["Location"] == again.headers["Location"]
    session.expire_all()
    assert session.scalar(count, reader(alice)) == before + 1


def test_each_rendered_form_carries_a_fresh_key(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    keys = [
        re.search(
            r'name="idempotency_key" type="hidden" value="(\w+)"',
            client.get(f"/my/messages/{mine.conversation_id}").get_data(as_text=True),
        ).group(1)
        for _ in range(2)
    ]
    assert keys[0] != keys[1]


def test_an_empty_reply_is_422_with_the_error_on_the_field(as_user, session, people) -> None:
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    response = post(client, f"/my/messages/{mine.conversation_id}/reply", {"body": "  "})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'aria-describedby="body-error"' in page
    assert "Write a message." in page


def test_an_attachment_round_trips_byte_for_byte(as_user, session, people) -> None:
    # Arrange
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    url = f"/my/messages/{mine.conversation_id}"
    # Act
    sent = post(
        client,
        f"{url}/reply",
        {"body": "My home readings.", "attachment": [(__import__("io").BytesIO(PNG), "bp.png")]},
        content_type="multipart/form-data",
    )
    page = client.get(url).get_data(as_text=True)
    link = re.search(r'href="(/my/attachments/[^"]+)"[^>]*download>bp.png', page)
    # Assert
    assert sent.status_code == 303
    assert link
    download = client.get(link.group(1))
    assert download.mimetype == "image/png"
    assert download.data == PNG


def test_an_attachment_is_typed_by_its_content_not_its_name(as_user, session, people) -> None:
    import io

    mine = records_of(session, people, "alice")
    client = as_user("alice")
    before = len(_messages_in(session, people, mine.conversation_id))
    response = post(
        client,
        f"/my/messages/{mine.conversation_id}/reply",
        {"body": "See file", "attachment": [(io.BytesIO(b"MZ\x90\x00 not a pdf"), "scan.pdf")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Only PDF, PNG and JPEG files can be attached." in page
    assert 'id="attachment-error"' in page
    assert len(_messages_in(session, people, mine.conversation_id)) == before


def test_an_attachment_over_the_size_limit_is_refused(app, as_user, session, people, monkeypatch):
    import io

    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 1024 * 1024)
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    big = PNG + b"\0" * (1024 * 1024)
    response = post(
        client,
        f"/my/messages/{mine.conversation_id}/reply",
        {"body": "Large", "attachment": [(io.BytesIO(big), "big.png")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Files can be at most 1 MB." in response.get_data(as_text=True)


def test_long_unicode_and_html_bodies_round_trip_and_show_as_text(as_user, session, people):
    mine = records_of(session, people, "alice")
    client = as_user("alice")
    body = "Grüße, 医生 🩺\n<script>alert('x')</script> & <b>bold</b>\n" + "ĳ" * 15_000
    post(
        client,
        f"/my/messages/{mine.conversation_id}/reply",
        {"body": body, "idempotency_key": "u1"},
    )
    stored = _messages_in(session, people, mine.conversation_id)[-1]
    assert stored.body == body
    page = client.get(f"/my/messages/{mine.conversation_id}").get_data(as_text=True)
    assert "Grüße, 医生 🩺" in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page
    assert 'class="message-body"' in page  # white-space: pre-wrap keeps the line breaks


def test_a_refused_reply_records_exactly_one_read_of_the_thread(as_user, session, people) -> None:
    # The 422 page shows the whole thread again: that showing is the one entry (nothing sent).
    mine = records_of(session, people, "alice")
    client = as_user("alice")

    response = post(client, f"/my/messages/{mine.conversation_id}/reply", {"body": ""})

    assert response.status_code == 422
    entries = entries_for(session, response)
    assert [(e.action, e.entity_type, e.entity_id) for e in entries] == [
        (AuditAction.VIEW, "conversation", str(mine.conversation_id))
    ]
    assert entries[0].patient_id == people.user("alice").patient.id
