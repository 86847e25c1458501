"""A deactivated provider stays on a patient's care team (reactivation brings them back), but
nobody can assign them, write to them or book them meanwhile (issue 11, point 7)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.services import accounts, appointments, messaging
from portal.services.errors import ServiceError
from tests.unit.services.conftest import World


@pytest.fixture
def chen_away(world: World) -> World:
    """dr.chen, on alice's care team, deactivated by the admin."""
    chen = world.people.user("dr_chen")
    accounts.set_active(world.session, world.actor("admin"), chen, active=False)
    return world


def test_a_deactivated_provider_cannot_be_assigned(chen_away: World) -> None:
    w = chen_away
    accounts.unassign_provider(
        w.session, w.actor("admin"), patient_id=w.patient_id, provider_id=w.chen_provider_id
    )
    with pytest.raises(accounts.AccountError):
        accounts.assign_provider(
            w.session, w.actor("admin"), patient_id=w.patient_id, provider_id=w.chen_provider_id
        )


def test_a_patient_cannot_start_a_thread_with_a_deactivated_provider(chen_away: World) -> None:
    w = chen_away
    chen_user = w.people.user("dr_chen").id
    assert chen_user not in {
        p.user_id for p in messaging.care_team(w.session, w.actor("alice"), w.patient_id)
    }
    with pytest.raises(messaging.MessageError):
        messaging.start_conversation(
            w.session,
            w.actor("alice"),
            patient_id=None,
            recipient_user_id=chen_user,
            subject="Hello",
            body="Are you there?",
        )


def test_a_patient_cannot_reply_to_a_deactivated_provider(chen_away: World) -> None:
    w = chen_away
    with pytest.raises(messaging.MessageError):
        messaging.reply(w.session, w.actor("alice"), w.conversation_id, body="Hello again")


def test_a_deactivated_provider_cannot_be_booked(world: World) -> None:
    # Arrange: an open slot of dr.chen's, then he is deactivated
    start, _end, _where = appointments.open_slots(
        world.session, world.chen_provider_id, world.today + timedelta(days=1)
    )[0]
    accounts.set_active(
        world.session, world.actor("admin"), world.people.user("dr_chen"), active=False
    )
    # Act and assert: the patient is not offered him, nor can she book him
    assert world.chen_provider_id not in {
        p.id for p in appointments.providers_for(world.session, world.actor("alice"))
    }
    with pytest.raises(ServiceError):
        appointments.book(
            world.session,
            world.actor("alice"),
            patient_id=world.patient_id,
            provider_id=world.chen_provider_id,
            start_at=start,
            reason="Check-up",
        )
