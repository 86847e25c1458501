"""A change and its audit entry commit together or not at all."""

from __future__ import annotations

from sqlalchemy import func, select

from portal import audit
from portal.models import AuditAction, AuditEvent, Message, ResultStatus, Visibility
from portal.services import labs
from tests.conftest import post
from tests.web.audit_support import a_conversation_of, entries_for


def _audit_count(session) -> int:  # type: ignore[no-untyped-def]
    """Entries of changes (page views, such as fetching the form's token, are not counted)."""
    stmt = select(func.count(AuditEvent.id)).where(AuditEvent.action != AuditAction.VIEW)
    return session.scalar(stmt)


def _messages_with(session, body: str) -> int:  # type: ignore[no-untyped-def]
    # Counting rows by content is no PHI read of a particular patient's record.
    stmt = select(func.count(Message.id)).where(Message.body == body)
    return session.scalar(stmt.execution_options(portal_scoped=True))


def test_a_message_whose_audit_entry_fails_is_not_sent(
    app, as_user, session, people, monkeypatch
) -> None:
    # Arrange
    client = as_user("alice")
    conversation = a_conversation_of(session, people, "alice")
    before = _audit_count(session)
    body = "Audit-failure probe: this message must not exist"

    def broken(*_args: object) -> str:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "_with_channel", broken)  # inside record(), before its INSERT
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    # Act
    response = post(
        client,
        f"/my/messages/{conversation.id}/reply",
        {"body": body, "idempotency_key": "audit-fail-1"},
    )
    monkeypatch.undo()
    # Assert
    assert response.status_code == 500
    assert _messages_with(session, body) == 0
    assert _audit_count(session) == before


def test_a_message_that_is_sent_has_its_entry_in_the_same_commit(as_user, session, people) -> None:
    client = as_user("alice")
    conversation = a_conversation_of(session, people, "alice")
    body = "Audit-success probe"

    response = post(
        client,
        f"/my/messages/{conversation.id}/reply",
        {"body": body, "idempotency_key": "audit-ok-1"},
    )

    assert response.status_code == 303
    assert _messages_with(session, body) == 1
    sends = [e for e in entries_for(session, response) if e.action is AuditAction.SEND]
    assert len(sends) == 1
    assert sends[0].patient_id == people.user("alice").patient.id


def test_a_change_that_rolls_back_leaves_no_audit_entry(session, people) -> None:
    # Arrange
    chen = people.actor("dr_chen")
    alice = people.user("alice").patient
    before = _audit_count(session)
    # Act: publish a result, then the surrounding transaction fails and rolls back.
    with session.begin_nested() as change:
        result = labs.create_result(
            session,
            chen,
            alice.id,
            test_code="2345-7",
            test_name="Glucose",
            data=labs.ResultInput(
                "5.5", "mmol/L", "3.9-5.5", ResultStatus.FINAL, Visibility.SHARED
            ),
        )
        assert result.id is not None
        assert _audit_count(session) == before + 1
        change.rollback()
    # Assert
    assert _audit_count(session) == before


def test_the_error_page_renders_after_a_failed_flush_outside_a_unit_of_work(
    app, as_user, session, people, monkeypatch
) -> None:
    # Arrange: a read path whose flush fails (a duplicate participant), leaving the request's
    # session waiting for a rollback, as a write racing another can
    from portal.extensions import db
    from portal.models import ConversationParticipant
    from portal.services import messaging

    client = as_user("alice")
    conversation = a_conversation_of(session, people, "alice")
    alice = people.user("alice")

    def broken_inbox(*_args: object, **_kwargs: object) -> object:
        db.session.add(ConversationParticipant(conversation_id=conversation.id, user_id=alice.id))
        db.session.flush()
        raise AssertionError("the flush above fails first")

    monkeypatch.setattr(messaging, "inbox", broken_inbox)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    # Act
    response = client.get("/my/messages")
    # Assert: the portal's own error page (with its navigation), not a PendingRollbackError
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong on our side" in page
    assert 'aria-label="Main"' in page or "<nav" in page
