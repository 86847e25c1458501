"""The patient's own contact details and preferences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit, zones
from portal.access import Actor, Permission, get_or_404, require
from portal.i18n import LANGUAGES
from portal.models import (
    AuditAction,
    Entity,
    PatientProfile,
    ProviderProfile,
    ReleasePreference,
    User,
)
from portal.services.errors import N_, ServiceError


class ProfileError(ServiceError):
    """Contact details or preferences that cannot be saved."""


@dataclass(frozen=True, slots=True)
class MailChoices:
    """Which email notices a patient wants, per kind."""

    lab_results: bool = True
    messages: bool = True
    appointments: bool = True
    plans: bool = True

    def any(self) -> bool:
        return self.lab_results or self.messages or self.appointments or self.plans


@dataclass(frozen=True, slots=True)
class Preferences:
    contact_phone: str | None
    contact_email: str | None
    mail: MailChoices
    #: None: the same as the browser's.
    preferred_language: str | None
    release_preference: ReleasePreference


def own_profile(session: Session, actor: Actor) -> PatientProfile:
    """The signed-in patient's profile (404 for anyone without one)."""
    require(actor, Permission.READ_OWN_RECORDS)
    return get_or_404(session, PatientProfile, actor.patient_id or 0, actor)


def _change_own(
    session: Session,
    actor: Actor,
    row: PatientProfile | ProviderProfile | User,
    changes: Mapping[str, object],
    *,
    patient_id: int | None = None,
) -> None:
    """Apply `changes` to the actor's own `row`; when any value differs, one audit entry names
    the changed fields (never their values)."""
    changed = sorted(k for k, v in changes.items() if getattr(row, k) != v)
    for key in changed:
        setattr(row, key, changes[key])
    if changed:
        audit.record(
            session,
            actor,
            AuditAction.UPDATE,
            Entity(row.__tablename__),
            row.id,
            patient_id=patient_id,
            detail={"fields": changed},
        )
    session.flush()


def set_language(session: Session, actor: Actor, tag: str) -> None:
    """The patient's language, from the switcher on any page; audited like their preferences."""
    if tag not in LANGUAGES:
        raise ProfileError("language", N_("Choose a language from the list."))
    profile = own_profile(session, actor)
    _change_own(session, actor, profile, {"preferred_language": tag}, patient_id=profile.id)


def update_preferences(session: Session, actor: Actor, data: Preferences) -> PatientProfile:
    """Save contact details and preferences; the audit entry names the fields, not the values."""
    profile = own_profile(session, actor)
    if data.preferred_language is not None and data.preferred_language not in LANGUAGES:
        raise ProfileError("preferred_language", N_("Choose a language from the list."))
    if data.mail.any() and not (data.contact_email or "").strip():
        raise ProfileError("contact_email", N_("Enter an email address to be notified by email."))
    changes = {
        "contact_phone": (data.contact_phone or "").strip() or None,
        "contact_email": (data.contact_email or "").strip().lower() or None,
        "mail_lab_results": data.mail.lab_results,
        "mail_messages": data.mail.messages,
        "mail_appointments": data.mail.appointments,
        "mail_plans": data.mail.plans,
        "preferred_language": data.preferred_language,
        "release_preference": data.release_preference,
    }
    _change_own(session, actor, profile, changes, patient_id=profile.id)
    return profile


def set_time_zone(session: Session, actor: Actor, name: str | None) -> None:
    """The actor's own zone to read times in (an IANA name), or None for the clinic's; every
    role has one. Refused on `time_zone` for a name the zone database does not know."""
    require(actor, Permission.OWN_ACCOUNT)
    name = (name or "").strip() or None
    if name is not None and zones.zone_named(name) is None:
        raise ProfileError("time_zone", N_("Choose a time zone from the list."))
    user = session.get(User, actor.user_id)
    if user is not None:
        _change_own(session, actor, user, {"time_zone": name})


def set_provider_mail(session: Session, actor: Actor, *, messages: bool) -> None:
    """A provider's own choice: an email when a patient writes to them (others have no such
    choice here: patients choose on their profile, administrators get no patients' mail)."""
    require(actor, Permission.OWN_ACCOUNT)
    profile = session.scalar(
        select(ProviderProfile).where(ProviderProfile.user_id == actor.user_id)
    )
    if profile is not None:
        _change_own(session, actor, profile, {"mail_messages": messages})
