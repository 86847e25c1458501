"""No one person alone, however many accounts they make (issue 21, point 5): "brought in by"
follows the whole chain of who created, invited or re-addressed whom."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.models import CareAssignment, CareAssignmentRequest, Role, User
from portal.services import account_admin, accounts, recovery
from portal.services.accounts.addresses import introducers
from tests.conftest import Demo

PASSWORD = "A long staff passphrase 2026"
PORTAL = "http://portal.example"


def _staff(
    session: Session, by: Actor | None, email: str, role: Role = Role.ADMIN, *, invite: bool = False
) -> User:
    """An account `by` makes (None: the operator); with a password unless `invite` (then an
    invitation to accept, as a mailbox `by` reads would)."""
    user, token = accounts.create_staff(
        session,
        by,
        email=email,
        role=role,
        display_name=email.split("@")[0],
        password=None if invite else PASSWORD,
        portal_url=PORTAL,
    )
    if invite:
        assert token
        accounts.accept_invitation(session, token=token, password=PASSWORD)
    session.flush()
    return user


def _provider_id(user: User) -> int:
    assert user.provider is not None
    return user.provider.id


def test_an_admin_cannot_open_a_chart_through_an_admin_they_made(
    session: Session, people: Demo
) -> None:
    # Arrange: the path. admin makes a second admin for a mailbox they hold, that
    # admin makes a provider
    admin = people.actor("admin")
    puppet = _staff(session, admin, "puppet@example.org", invite=True)
    provider = _staff(session, Actor.of(puppet), "dr.puppet@example.org", Role.PROVIDER)
    alice = people.user("alice").patient
    assert alice is not None
    # Act: the first admin puts that provider on alice's care team
    done = accounts.assign_provider(
        session, admin, patient_id=alice.id, provider_id=_provider_id(provider)
    )
    # Assert: it waits for a second administrator, and neither link of the chain is one
    assert isinstance(done, CareAssignmentRequest)
    for who in (admin, Actor.of(puppet)):
        with pytest.raises(accounts.AccountError, match="Another administrator must confirm"):
            accounts.decide_assignment(
                session, who, patient_id=alice.id, request_id=done.id, confirm=True
            )
    # ... while an administrator outside the chain can
    other = _staff(session, None, "other.admin@example.org")
    confirmed = accounts.decide_assignment(
        session, Actor.of(other), patient_id=alice.id, request_id=done.id, confirm=True
    )
    assert isinstance(confirmed, CareAssignment)


def test_the_chain_is_followed_through_invitations_and_changed_addresses(
    session: Session, people: Demo
) -> None:
    # Arrange: admin invites A2; the operator makes A3, whose address A2 changes (to a mailbox
    # A2 holds); A3 makes the provider
    admin = people.actor("admin")
    a2 = _staff(session, admin, "a2@example.org", invite=True)
    a3 = _staff(session, None, "a3@example.org")
    account_admin.edit_user(
        session, Actor.of(a2), a3.id, email="a3.moved@example.org", display_name="A3"
    )
    provider = _staff(session, Actor.of(a3), "dr.deep@example.org", Role.PROVIDER)
    # Act / Assert
    assert introducers(session, [provider.id]) >= {
        a3.id,
        a2.id,
        people.user("admin").id,
    }
    alice = people.user("alice").patient
    assert alice is not None
    done = accounts.assign_provider(
        session, admin, patient_id=alice.id, provider_id=_provider_id(provider)
    )
    assert isinstance(done, CareAssignmentRequest)


def test_a_readdressed_accounts_reset_is_refused_to_every_admin_in_the_chain(
    session: Session, people: Demo
) -> None:
    # Arrange: the operator's provider, re-addressed by an admin the demo admin made
    admin = people.actor("admin")
    puppet = _staff(session, admin, "puppet2@example.org")
    provider = _staff(session, None, "dr.moved@example.org", Role.PROVIDER)
    account_admin.edit_user(
        session, Actor.of(puppet), provider.id, email="dr.away@example.org", display_name="Dr M"
    )
    # Act / Assert: refused to the one who changed it and to the one who made them
    with pytest.raises(accounts.AccountError, match="You changed this address yourself"):
        recovery.send_reset(session, Actor.of(puppet), provider, portal_url=PORTAL)
    with pytest.raises(accounts.AccountError, match="An account you brought in changed"):
        recovery.send_reset(session, admin, provider, portal_url=PORTAL)
    # ... and sent by an administrator outside the chain
    other = _staff(session, None, "other2.admin@example.org")
    recovery.send_reset(session, Actor.of(other), provider, portal_url=PORTAL)


def test_a_cycle_of_accounts_bringing_each_other_in_ends(session: Session, people: Demo) -> None:
    admin = people.actor("admin")
    b = _staff(session, admin, "b@example.org")
    # b re-addresses the account that made it: each brought the other in
    account_admin.edit_user(
        session,
        Actor.of(b),
        people.user("admin").id,
        email="admin.moved@example.org",
        display_name="Admin",
    )

    found = introducers(session, [b.id])

    assert {people.user("admin").id, b.id} <= found
