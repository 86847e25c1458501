"""`notifications.events_after`: the socket's one read, scoped like every other read."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from portal.models import AuthMethod, EventType
from portal.services import accounts, messaging, notifications, sessions
from tests.unit.services.conftest import World

IDLE, ABSOLUTE = timedelta(minutes=30), timedelta(hours=12)


def _alice_writes(world: World) -> int:
    """Alice writes to her care team; returns the stream's position before she did."""
    before = notifications.latest_event_id(world.session)
    messaging.reply(world.session, world.actor("alice"), world.conversation_id, body="Hello")
    world.session.flush()
    return before


def test_the_recipient_gets_the_event_as_ids_and_a_time(world: World) -> None:
    before = _alice_writes(world)
    chen = world.actor("dr_chen")
    events = notifications.events_after(world.session, chen, before, limit=10)
    assert [(e.type, e.entity_id, e.patient_id) for e in events] == [
        (EventType.MESSAGE_CREATED, world.conversation_id, world.patient_id)
    ]
    assert set(events[0].payload()) == {"type", "id", "patientId", "at", "eventId"}
    assert "Hello" not in str(events[0].payload())
    assert events[0].payload()["at"].endswith("Z")


def test_nobody_else_gets_it(world: World) -> None:
    before = _alice_writes(world)
    for name in ("bob", "dr_okafor", "admin", "alice"):
        assert notifications.events_after(world.session, world.actor(name), before, limit=10) == []


def test_a_provider_taken_off_the_care_team_stops_getting_the_patients_events_at_once(
    world: World,
) -> None:
    before = _alice_writes(world)
    chen = world.actor("dr_chen")
    assert notifications.events_after(world.session, chen, before, limit=10)
    accounts.unassign_provider(
        world.session,
        world.actor("admin"),
        patient_id=world.patient_id,
        provider_id=world.chen_provider_id,
    )
    world.session.flush()
    # Already staged, not yet delivered: still not sent
    assert notifications.events_after(world.session, chen, before, limit=10) == []


def test_open_sockets_are_rechecked_by_the_same_rule_as_a_request(
    session: Session, world: World
) -> None:
    alice = world.people.user("alice")
    kept = sessions.start(session, alice, method=AuthMethod.SESSION, client="Laptop")
    ended = sessions.start(session, alice, method=AuthMethod.SESSION, client="Phone")
    session.flush()
    rows = {
        token: sessions.check(session, token, idle=IDLE, absolute=ABSOLUTE).row
        for token in (kept, ended)
    }
    ids = {token: row.id for token, row in rows.items() if row is not None}
    sessions.end_one(session, world.actor("alice"), ids[ended])
    session.expire_all()  # the bus reads in a session of its own
    assert sessions.still_valid(session, ids.values(), idle=IDLE, absolute=ABSOLUTE) == {ids[kept]}
