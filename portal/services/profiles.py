"""The patient's own contact details and preferences."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from portal import audit
from portal.access import Actor, Permission, get_or_404, require
from portal.models import AuditAction, PatientProfile, ReleasePreference
from portal.services.errors import ServiceError

LANGUAGES = {"en": "English", "fr": "Français", "es": "Español", "de": "Deutsch", "pt": "Português"}


class ProfileError(ServiceError):
    """Contact details or preferences that cannot be saved."""


@dataclass(frozen=True, slots=True)
class Preferences:
    contact_phone: str | None
    contact_email: str | None
    notify_by_email: bool
    preferred_language: str
    release_preference: ReleasePreference


def own_profile(session: Session, actor: Actor) -> PatientProfile:
    """The signed-in patient's profile (404 for anyone without one)."""
    require(actor, Permission.READ_OWN_RECORDS)
    return get_or_404(session, PatientProfile, actor.patient_id or 0, actor)


def update_preferences(session: Session, actor: Actor, data: Preferences) -> PatientProfile:
    """Save contact details and preferences; the audit entry names the fields, not the values."""
    profile = own_profile(session, actor)
    if data.preferred_language not in LANGUAGES:
        raise ProfileError("preferred_language", "Choose a language from the list.")
    if data.notify_by_email and not (data.contact_email or "").strip():
        raise ProfileError("contact_email", "Enter an email address to be notified by email.")
    changes = {
        "contact_phone": (data.contact_phone or "").strip() or None,
        "contact_email": (data.contact_email or "").strip().lower() or None,
        "notify_by_email": data.notify_by_email,
        "preferred_language": data.preferred_language,
        "release_preference": data.release_preference,
    }
    changed = sorted(k for k, v in changes.items() if getattr(profile, k) != v)
    for key, value in changes.items():
        setattr(profile, key, value)
    if changed:
        audit.record(
            session,
            actor_id=actor.user_id,
            actor_role=actor.role,
            action=AuditAction.UPDATE,
            entity_type="patient_profile",
            entity_id=profile.id,
            patient_id=profile.id,
            detail={"fields": changed},
        )
    session.flush()
    return profile
