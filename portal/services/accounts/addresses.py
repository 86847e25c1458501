"""Who set an address that credentials are mailed to, and who brought an account in: the
checks by which no one person alone opens an account."""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
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
    """Refuse when `actor` set the address this would go to: then nobody else would see it."""
    changed = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.entity_type == entity_type,
            AuditEvent.entity_id == str(entity_id),
            AuditEvent.actor_id == actor.user_id,
        )
    )
    if changed:
        raise AccountError(
            None,
            N_(
                "You changed this address yourself: another administrator must send this, "
                "so that no one person alone opens an account."
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


def brought_in_by(session: Session, by_user_id: int, user_id: int) -> bool:
    """Did `by_user_id` create the account `user_id`, invite it, or set its address? Then that
    person could be holding the account: it is not a second person for what they do."""
    invited = select(Invitation.id).where(
        Invitation.user_id == user_id, Invitation.issued_by_id == by_user_id
    )
    made = select(AuditEvent.id).where(
        AuditEvent.entity_id == str(user_id),
        AuditEvent.actor_id == by_user_id,
        or_(
            (AuditEvent.entity_type == "user_account") & (AuditEvent.action == AuditAction.CREATE),
            AuditEvent.entity_type == Entity.USER_EMAIL,
        ),
    )
    return session.scalar(select(invited.exists() | made.exists())) or False
