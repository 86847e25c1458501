"""Who set an address that credentials are mailed to, and who brought an account in: the
checks by which no one person alone opens an account."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select, union, update
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.db import utcnow
from portal.models import AuditAction, AuditEvent, Entity, Invitation, PasswordReset, User
from portal.services.accounts.users import AccountError
from portal.services.errors import N_

#: Audit entity types of an administrator's change to an address that credentials are mailed
#: to; whoever made one is not the one who mails credentials there (`check_not_introduced_by`).


def check_not_introduced_by(
    session: Session, actor: Actor, entity_type: Entity, entity_id: int
) -> None:
    """Refuse when `actor` set the address this would go to, or brought in (however
    indirectly, `introducers`) an account that did: then nobody else would see it."""
    changers = {
        int(who)
        for who in session.scalars(
            select(AuditEvent.actor_id).where(
                AuditEvent.entity_type == entity_type,
                AuditEvent.entity_id == str(entity_id),
                AuditEvent.actor_id.is_not(None),
            )
        )
        if who is not None
    }
    if actor.user_id in changers:
        raise AccountError(
            None,
            N_(
                "You changed this address yourself: another administrator must send this, "
                "so that no one person alone opens an account."
            ),
        )
    if changers and actor.user_id in introducers(session, changers):
        raise AccountError(
            None,
            N_(
                "An account you brought in changed this address: another administrator must "
                "send this, so that no one person alone opens an account."
            ),
        )


def address_set_by_admin(session: Session, user: User) -> bool:
    """Did an administrator set the account's sign-in address since its holder last signed
    in? Then "Forgot your password?" sends nothing there: the admin who typed it could be
    reading that mailbox (another admin may still send a link, `recovery.send_reset`)."""
    stmt = select(AuditEvent.id).where(
        AuditEvent.entity_type == Entity.USER_EMAIL, AuditEvent.entity_id == str(user.id)
    )
    if user.last_login_at is not None:
        stmt = stmt.where(AuditEvent.occurred_at > user.last_login_at)
    return session.scalar(stmt.limit(1)) is not None


def end_mailed_links(session: Session, user_id: int) -> None:
    """End the invitations and reset links not used yet (sent to an address that changed)."""
    now = utcnow()
    for model in (Invitation, PasswordReset):
        session.execute(
            update(model)
            .where(model.user_id == user_id, model.used_at.is_(None), model.expires_at > now)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )


def _direct_introducers(session: Session, user_ids: set[int]) -> set[int]:
    """Who created, invited or re-addressed any of `user_ids` (one statement)."""
    invited = select(Invitation.issued_by_id.label("by")).where(
        Invitation.user_id.in_(user_ids), Invitation.issued_by_id.is_not(None)
    )
    made = select(AuditEvent.actor_id.label("by")).where(
        AuditEvent.entity_id.in_([str(u) for u in user_ids]),
        AuditEvent.actor_id.is_not(None),
        or_(
            (AuditEvent.entity_type == Entity.USER_ACCOUNT)
            & (AuditEvent.action == AuditAction.CREATE),
            AuditEvent.entity_type == Entity.USER_EMAIL,
        ),
    )
    return {int(by) for by in session.scalars(select(union(invited, made).subquery().c.by))}


def introducers(session: Session, user_ids: Iterable[int]) -> set[int]:
    """Everyone who brought any of `user_ids` in, directly or through accounts they brought
    in, however long the chain (issue 21, point 5): admin A makes admin B for a mailbox A
    reads, B makes provider P, and A (through B) brought P in. A cycle ends the walk: each
    account is looked up once."""
    found: set[int] = set()
    frontier = set(user_ids)
    seen = set(frontier)
    while frontier:
        direct = _direct_introducers(session, frontier)
        found |= direct
        frontier = direct - seen
        seen |= direct
    return found


def brought_in_by(session: Session, by_user_id: int, user_id: int) -> bool:
    """Did `by_user_id` create the account `user_id`, invite it, or set its address, directly
    or through accounts they brought in (`introducers`)? Then that person could be holding
    the account: it is not a second person for what they do."""
    return by_user_id in introducers(session, [user_id])
