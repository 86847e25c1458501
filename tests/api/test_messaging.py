"""Messages through the API: the caller's threads with unread counts, a thread's messages page
by page, new threads and replies (one message per Idempotency-Key), read receipts by the
recipient only; 404 for a thread that is not the caller's, one audit entry per read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.demo import MINIMAL_PDF
from portal.models import (
    AuditAction,
    Conversation,
    EventType,
    Message,
    MessageStatus,
    Notification,
)
from portal.services import attachments, messaging
from portal.transactions import unit_of_work
from tests.api.conftest import Api
from tests.conftest import Demo
from tests.web.audit_support import entries_for

ApiFor = Callable[[str], Api]

CONVERSATION_FIELDS = {
    "id",
    "patientId",
    "subject",
    "participants",
    "lastMessageAt",
    "unreadCount",
    "createdAt",
    "updatedAt",
}
MESSAGE_FIELDS = {
    "id",
    "conversationId",
    "from",
    "to",
    "body",
    "attachments",
    "sentAt",
    "status",
    "readAt",
    "createdAt",
    "updatedAt",
}


def _uid(people: Demo, name: str) -> int:
    return int(people.user(name).id)


def _thread(session: Session, people: Demo) -> Conversation:
    """Alice's demo thread with dr.chen: her question (read by him), his answer (unread)."""
    pid = people.user("alice").patient.id
    stmt = select(Conversation).where(Conversation.patient_id == pid).order_by(Conversation.id)
    found = session.scalars(unscoped(stmt, "test: alice's threads")).first()
    assert found is not None
    return found


def _messages(session: Session, conversation_id: int) -> list[Message]:
    session.expire_all()
    stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    return list(session.scalars(unscoped(stmt, "test: a thread's messages")))


def _count_messages(session: Session) -> int:
    stmt = select(func.count(Message.id))
    return int(session.scalar(unscoped(stmt, "test: counting messages")) or 0)


def _unread_notices(session: Session, user_id: int, conversation_id: int) -> int:
    stmt = select(func.count(Notification.id)).where(
        Notification.user_id == user_id,
        Notification.type == EventType.MESSAGE_CREATED,
        Notification.entity_id == conversation_id,
        Notification.read_at.is_(None),
    )
    return int(session.scalar(unscoped(stmt, "test: unread notices")) or 0)


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    return body


# --- GET /conversations ------------------------------------------------------------------------


def test_the_patients_threads_with_participants_and_unread_count(
    api: ApiFor, session: Session, people: Demo
) -> None:
    thread = _thread(session, people)
    response = api("alice").get("/conversations")
    assert response.status_code == 200
    (item,) = [i for i in response.json["items"] if i["id"] == thread.id]
    assert set(item) == CONVERSATION_FIELDS
    assert item["patientId"] == thread.patient_id
    assert item["subject"] == thread.subject
    assert sorted(item["participants"]) == sorted([_uid(people, "alice"), _uid(people, "dr_chen")])
    assert item["unreadCount"] == 1  # dr.chen's answer
    assert item["lastMessageAt"].endswith("Z")


def test_a_provider_lists_the_threads_they_take_part_in(
    api: ApiFor, session: Session, people: Demo
) -> None:
    thread = _thread(session, people)
    chen = api("dr_chen").get("/conversations?limit=100").json["items"]
    assert thread.id in {i["id"] for i in chen}
    okafor = api("dr_okafor").get("/conversations?limit=100").json["items"]
    assert thread.id not in {i["id"] for i in okafor}


def test_an_admin_takes_part_in_no_conversation(api: ApiFor) -> None:
    _problem(api("admin").get("/conversations"), 403)


def test_the_thread_list_is_audited_and_checks_its_query(
    api: ApiFor, session: Session, people: Demo
) -> None:
    response = api("alice").get("/conversations")
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "conversation_list")
    assert entry.patient_id == people.user("alice").patient.id
    assert "cursor" in _problem(api("alice").get("/conversations?cursor=%%%"), 422)["errors"]
    assert "query.limit" in _problem(api("alice").get("/conversations?limit=0"), 422)["errors"]


# --- GET /conversations/{id}/messages ----------------------------------------------------------


def test_a_participant_reads_the_messages_oldest_first(
    api: ApiFor, session: Session, people: Demo
) -> None:
    thread = _thread(session, people)
    stored = _messages(session, thread.id)
    response = api("alice").get(f"/conversations/{thread.id}/messages")
    assert response.status_code == 200
    items = response.json["items"]
    assert [i["id"] for i in items] == [m.id for m in stored]
    question, answer = items[0], items[-1]
    assert set(question) == MESSAGE_FIELDS
    assert (question["from"], question["to"]) == (_uid(people, "alice"), _uid(people, "dr_chen"))
    assert (question["status"], answer["status"]) == ("read", "sent")
    assert question["readAt"]
    assert answer["readAt"] is None
    assert question["updatedAt"] == question["readAt"]
    assert answer["body"] == stored[-1].body
    assert answer["attachments"] == []
    # Reading the messages marks nothing read: that is POST /messages/{id}/read.
    assert _messages(session, thread.id)[-1].status is MessageStatus.SENT


def test_attachments_are_listed_with_their_type_and_size(
    api: ApiFor, session: Session, people: Demo
) -> None:
    thread = _thread(session, people)
    with unit_of_work(session) as s:
        sent = messaging.reply(
            s,
            people.actor("dr_chen"),
            thread.id,
            body="The report is attached.",
            uploads=[attachments.Upload("report.pdf", MINIMAL_PDF)],
        )
    items = api("alice").get(f"/conversations/{thread.id}/messages?limit=100").json["items"]
    (item,) = [i for i in items if i["id"] == sent.id]
    (file,) = item["attachments"]
    assert set(file) == {"id", "filename", "contentType", "size"}
    assert (file["filename"], file["contentType"], file["size"]) == (
        "report.pdf",
        "application/pdf",
        len(MINIMAL_PDF),
    )


def test_messages_page_with_a_cursor(api: ApiFor, session: Session, people: Demo) -> None:
    thread = _thread(session, people)
    first = api("alice").get(f"/conversations/{thread.id}/messages?limit=1")
    cursor = first.json["nextCursor"]
    assert cursor
    assert len(first.json["items"]) == 1
    rest = api("alice").get(f"/conversations/{thread.id}/messages?limit=1&cursor={cursor}")
    ids = [first.json["items"][0]["id"], rest.json["items"][0]["id"]]
    assert ids == [m.id for m in _messages(session, thread.id)][:2]
    bad = api("alice").get(f"/conversations/{thread.id}/messages?cursor=abc")
    assert "cursor" in _problem(bad, 422)["errors"]


@pytest.mark.parametrize("name", ["dr_okafor", "bob"])
def test_someone_elses_thread_is_a_404_recorded_as_denied(
    api: ApiFor, session: Session, people: Demo, name: str
) -> None:
    thread = _thread(session, people)
    response = api(name).get(f"/conversations/{thread.id}/messages")
    _problem(response, 404)
    (entry,) = entries_for(session, response)
    assert entry.action is AuditAction.ACCESS_DENIED
    assert entry.entity_type == "conversation"
    assert entry.entity_id == str(thread.id)


def test_reading_a_thread_is_recorded_once(api: ApiFor, session: Session, people: Demo) -> None:
    thread = _thread(session, people)
    response = api("dr_chen").get(f"/conversations/{thread.id}/messages")
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "conversation")
    assert entry.entity_id == str(thread.id)
    assert entry.patient_id == thread.patient_id


# --- POST /conversations -----------------------------------------------------------------------


def test_a_patient_starts_a_thread_with_their_provider(
    api: ApiFor, session: Session, people: Demo
) -> None:
    chen = _uid(people, "dr_chen")
    body = {"subject": "Knee pain", "to": chen, "body": "It hurts on stairs."}
    response = api("alice").post("/conversations", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.json
    assert set(created) == CONVERSATION_FIELDS
    assert created["patientId"] == people.user("alice").patient.id
    assert sorted(created["participants"]) == sorted([_uid(people, "alice"), chen])
    assert created["unreadCount"] == 0
    (message,) = _messages(session, created["id"])
    assert (message.sender_id, message.recipient_id, message.body) == (
        _uid(people, "alice"),
        chen,
        "It hurts on stairs.",
    )
    # dr.chen has it, unread.
    theirs = api("dr_chen").get("/conversations").json["items"]
    assert next(i for i in theirs if i["id"] == created["id"])["unreadCount"] == 1


def test_a_provider_names_the_patient(api: ApiFor, people: Demo) -> None:
    alice_user = _uid(people, "alice")
    body = {"subject": "Your results", "to": alice_user, "body": "All normal."}
    missing = api("dr_chen").post("/conversations", json=body)
    assert "patientId" in _problem(missing, 422)["errors"]
    alice = people.user("alice").patient.id
    response = api("dr_chen").post("/conversations", json={**body, "patientId": alice})
    assert response.status_code == 201
    assert response.json["patientId"] == alice
    _problem(api("dr_okafor").post("/conversations", json={**body, "patientId": alice}), 404)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "dr_okafor"}, "to"),  # not in alice's care team
        ({"subject": " "}, "subject"),
        ({"body": ""}, "body"),
        ({"to": 0}, "body.to"),
        ({"colour": "blue"}, "body.colour"),
        ({"patientId": "x"}, "body.patientId"),
    ],
)
def test_a_new_thread_with_bad_input_is_a_422_naming_the_field(
    api: ApiFor, session: Session, people: Demo, change: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {"subject": "Hello", "to": _uid(people, "dr_chen"), "body": "Hi"}
    body.update({k: _uid(people, v) if v == "dr_okafor" else v for k, v in change.items()})
    before = _count_messages(session)
    assert field in _problem(api("alice").post("/conversations", json=body), 422)["errors"]
    assert _count_messages(session) == before


def test_a_new_thread_posted_twice_with_one_key_is_created_once(
    api: ApiFor, session: Session, people: Demo
) -> None:
    body = {"subject": "Retry", "to": _uid(people, "dr_chen"), "body": "Once only."}
    key = {"Idempotency-Key": "new-thread-1"}
    before = _count_messages(session)
    first = api("alice").post("/conversations", json=body, headers=key)
    again = api("alice").post("/conversations", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _count_messages(session) == before + 1


# --- POST /conversations/{id}/messages ---------------------------------------------------------


def test_a_reply_goes_to_the_other_participant(api: ApiFor, session: Session, people: Demo) -> None:
    thread = _thread(session, people)
    response = api("alice").post(f"/conversations/{thread.id}/messages", json={"body": "Thanks!"})
    assert response.status_code == 201, response.get_data(as_text=True)
    sent = response.json
    assert set(sent) == MESSAGE_FIELDS
    assert (sent["from"], sent["to"]) == (_uid(people, "alice"), _uid(people, "dr_chen"))
    assert (sent["status"], sent["body"], sent["conversationId"]) == ("sent", "Thanks!", thread.id)
    assert _messages(session, thread.id)[-1].id == sent["id"]


def test_a_reply_sent_twice_with_one_key_is_one_message(
    api: ApiFor, session: Session, people: Demo
) -> None:
    thread = _thread(session, people)
    path = f"/conversations/{thread.id}/messages"
    key = {"Idempotency-Key": "reply-7f3a"}
    before = len(_messages(session, thread.id))
    first = api("alice").post(path, json={"body": "Same words"}, headers=key)
    again = api("alice").post(path, json={"body": "Same words"}, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(_messages(session, thread.id)) == before + 1
    # The same key with another body is a client's mistake, not a retry.
    other = api("alice").post(path, json={"body": "Other words"}, headers=key)
    assert "Idempotency-Key" in _problem(other, 422)["errors"]
    assert len(_messages(session, thread.id)) == before + 1


def test_replies_that_may_not_be_sent(api: ApiFor, session: Session, people: Demo) -> None:
    thread = _thread(session, people)
    path = f"/conversations/{thread.id}/messages"
    _problem(api("dr_okafor").post(path, json={"body": "Hello"}), 404)
    _problem(api("bob").post(path, json={"body": "Hello"}), 404)
    assert "body" in _problem(api("alice").post(path, json={"body": "  "}), 422)["errors"]
    assert "body.body" in _problem(api("alice").post(path, json={}), 422)["errors"]
    _problem(api("admin").post(path, json={"body": "Hello"}), 403)


# --- POST /messages/{id}/read ------------------------------------------------------------------


def test_the_recipient_marks_a_message_read(api: ApiFor, session: Session, people: Demo) -> None:
    thread = _thread(session, people)
    answer = _messages(session, thread.id)[-1]
    assert answer.recipient_id == _uid(people, "alice")
    assert answer.status is MessageStatus.SENT
    assert _unread_notices(session, answer.recipient_id, thread.id) == 1
    response = api("alice").post(f"/messages/{answer.id}/read")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["status"] == "read"
    assert response.json["readAt"]
    assert _messages(session, thread.id)[-1].status is MessageStatus.READ
    # Nothing of the thread is left unread: its "new message" notice is read too.
    assert _unread_notices(session, answer.recipient_id, thread.id) == 0
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type) == (AuditAction.VIEW, "message")
    assert entry.entity_id == str(answer.id)
    assert entry.patient_id == thread.patient_id
    inbox = api("alice").get("/conversations").json["items"]
    assert next(i for i in inbox if i["id"] == thread.id)["unreadCount"] == 0
    # Again: nothing changes.
    again = api("alice").post(f"/messages/{answer.id}/read")
    assert again.status_code == 200
    assert again.json["readAt"] == response.json["readAt"]


@pytest.mark.parametrize("name", ["dr_chen", "dr_okafor", "bob"])
def test_only_the_recipient_marks_it_read(
    api: ApiFor, session: Session, people: Demo, name: str
) -> None:
    # dr.chen sent it and may see it: still a 404, as for those who may not see it at all.
    answer = _messages(session, _thread(session, people).id)[-1]
    _problem(api(name).post(f"/messages/{answer.id}/read"), 404)
    assert _messages(session, answer.conversation_id)[-1].status is MessageStatus.SENT


def test_a_notice_stays_unread_while_another_message_of_the_thread_is(
    api: ApiFor, session: Session, people: Demo
) -> None:
    thread = _thread(session, people)
    later = api("dr_chen").post(f"/conversations/{thread.id}/messages", json={"body": "Also..."})
    assert later.status_code == 201
    answer = _messages(session, thread.id)[-2]
    assert api("alice").post(f"/messages/{answer.id}/read").status_code == 200
    assert _unread_notices(session, answer.recipient_id, thread.id) >= 1
    assert api("alice").post(f"/messages/{later.json['id']}/read").status_code == 200
    assert _unread_notices(session, answer.recipient_id, thread.id) == 0
