"""What a response showed is declared, never inferred from the order of a view's reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g

from portal.access import get_or_404
from portal.models import AuditAction, Conversation, LabResult, PatientProfile
from portal.services import screens
from tests.web.audit_support import a_conversation_of, a_result_of, entries_for


def _reading_first(
    original: Callable[..., Any], model: type, record_id: Callable[[], int]
) -> Callable[..., Any]:
    """`original`, after first fetching another record of the same patient (a reordered view)."""

    def screen(session, actor, *args: Any) -> Any:  # type: ignore[no-untyped-def]
        get_or_404(session, model, record_id(), actor)
        return original(session, actor, *args)

    return screen


@pytest.mark.parametrize("first", ["patient", "nothing"])
def test_reading_the_patient_before_the_result_leaves_the_entry_about_the_result(
    as_user, session, people, monkeypatch, first: str
) -> None:
    # Arrange: the staff result screen, made to fetch the patient's profile first.
    result = a_result_of(session, people, "alice")
    alice = people.user("alice").patient.id
    if first == "patient":
        monkeypatch.setattr(
            screens,
            "staff_lab_result",
            _reading_first(screens.staff_lab_result, PatientProfile, lambda: alice),
        )
    client = as_user("dr_chen")
    # Act
    response = client.get(f"/staff/results/{result.id}")
    # Assert
    assert response.status_code == 200
    (entry,) = entries_for(session, response)
    assert (entry.action, entry.entity_type, entry.entity_id, entry.patient_id) == (
        AuditAction.VIEW,
        "lab_result",
        str(result.id),
        alice,
    )


@pytest.mark.parametrize("first", ["result", "nothing"])
def test_reading_a_result_before_the_thread_leaves_the_entry_about_the_thread(
    as_user, session, people, monkeypatch, first: str
) -> None:
    conversation = a_conversation_of(session, people, "alice")
    result = a_result_of(session, people, "alice")
    if first == "result":
        monkeypatch.setattr(
            screens,
            "conversation",
            _reading_first(screens.conversation, LabResult, lambda: result.id),
        )
    client = as_user("alice")

    response = client.get(f"/my/messages/{conversation.id}")

    assert response.status_code == 200
    (entry,) = entries_for(session, response)
    assert (entry.entity_type, entry.entity_id, entry.patient_id) == (
        "conversation",
        str(conversation.id),
        conversation.patient_id,
    )


def test_fetching_a_record_writes_no_request_state(app: Flask, session, people) -> None:
    # `get_or_404` is a read: were it to note what it fetched (as it once did, for the audit),
    # the first fetch of a view would decide its entry.
    alice = people.actor("alice")
    result = a_result_of(session, people, "alice")
    with app.test_request_context("/"):
        before = dict(vars(g))
        get_or_404(session, LabResult, result.id, alice)
        get_or_404(session, PatientProfile, alice.patient_id, alice)
        get_or_404(session, Conversation, a_conversation_of(session, people, "alice").id, alice)
        assert dict(vars(g)) == before


def test_a_screen_naming_two_different_subjects_is_a_mistake(app: Flask) -> None:
    from portal.audit import Subject
    from portal.models import Entity
    from portal.web.audit_reads import SubjectAlreadyNamed, shows

    with app.test_request_context("/"):
        shows(Subject(Entity.LAB_RESULT, 1, 1))
        shows(Subject(Entity.LAB_RESULT, 1, 1))  # the same again is harmless
        with pytest.raises(SubjectAlreadyNamed):
            shows(Subject(Entity.PATIENT_PROFILE, 1, 1))
