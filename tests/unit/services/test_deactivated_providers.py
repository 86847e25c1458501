"""A deactivated provider keeps their care-team assignment (reactivation brings them back), but
meanwhile appears on no patient's care team: nobody can assign them, write to them, book them
or hand them a thread (issue 11, point 7; one rule since issue 20, `services.care_team`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.access import unscoped
from portal.models import CareAssignment, Conversation, Message
from portal.services import accounts, appointments, messaging, patients
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


# --- The one care-team rule (`portal.services.care_team`), wherever a team is shown or used ---


@pytest.fixture
def okafor_away(world: World) -> World:
    """dr.okafor joins alice's care team beside dr.chen, then is deactivated by the admin."""
    w = world
    joined = accounts.assign_provider(
        w.session, w.actor("admin"), patient_id=w.patient_id, provider_id=w.okafor_provider_id
    )
    assert isinstance(joined, CareAssignment)  # assigned at once, no second admin needed
    accounts.set_active(w.session, w.actor("admin"), w.people.user("dr_okafor"), active=False)
    return w


def test_a_deactivated_provider_appears_on_no_care_team_but_the_admin_still_manages_the_assignment(
    okafor_away: World,
) -> None:
    w = okafor_away
    on_team = {w.chen_provider_id}
    # The patient's team (messages, booking, her record), the clinician's chart: active only
    assert {p.id for p in messaging.care_team(w.session, w.actor("alice"), w.patient_id)} == on_team
    chart = patients.chart_screen(w.session, w.actor("dr_chen"), w.patient_id)
    assert {p.id for p in chart.care_team} == on_team
    assert {p.id for p in appointments.providers_for(w.session, w.actor("alice"))} == on_team
    # The administrator's screen lists every current assignment, so this one can be ended
    screen = accounts.care_team_screen(w.session, w.actor("admin"), w.patient_id)
    assert {p.id for p in screen.members} == {w.chen_provider_id, w.okafor_provider_id}
    accounts.unassign_provider(
        w.session, w.actor("admin"), patient_id=w.patient_id, provider_id=w.okafor_provider_id
    )
    screen = accounts.care_team_screen(w.session, w.actor("admin"), w.patient_id)
    assert {p.id for p in screen.members} == on_team


def test_a_thread_is_not_handed_to_a_deactivated_provider(okafor_away: World) -> None:
    # Arrange: alice writes to dr.chen; dr.okafor, still assigned, is deactivated
    w = okafor_away
    chen = w.people.user("dr_chen")
    message = messaging.start_conversation(
        w.session,
        w.actor("alice"),
        patient_id=None,
        recipient_user_id=chen.id,
        subject="Dizzy",
        body="Since Monday.",
    )
    # Act: dr.chen leaves alice's care team
    accounts.unassign_provider(
        w.session, w.actor("admin"), patient_id=w.patient_id, provider_id=w.chen_provider_id
    )
    # Assert: nobody active is left, so the thread closes; the unread message stays dr.chen's
    w.session.expire_all()
    conversation = w.session.scalar(
        unscoped(select(Conversation).where(Conversation.id == message.conversation_id), "test")
    )
    assert conversation is not None
    assert conversation.closed_at is not None
    recipient = w.session.scalar(
        unscoped(select(Message.recipient_id).where(Message.id == message.id), "test")
    )
    assert recipient == chen.id
