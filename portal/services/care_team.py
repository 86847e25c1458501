"""Who is on a patient's care team now: the one rule for who appears on it, who may be written
to or booked, and who is handed a thread when someone leaves.

A provider is on a patient's care team while their assignment has not ended **and** their
account is active. A deactivated provider keeps the assignment (reactivating the account brings
them back onto the team), but meanwhile appears on no team, is written to, booked and handed
nothing. The assignment itself (`assignment_current`) is what an administrator manages: the
care-team screen lists it, deactivated or not, so it can still be ended.

What a provider may *read* is a separate rule, `access`'s scoping, which counts current
assignments alone: a deactivated account cannot sign in to read anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, select

from portal.models import CareAssignment, ProviderProfile, User


def assignment_current() -> ColumnElement[bool]:
    """An assignment that has not ended (whether or not its provider's account is active)."""
    return CareAssignment.ended_at.is_(None)


def members(patient_id: int, *columns: Any) -> Select[Any]:
    """`columns` (by default the provider's profile) of each provider on patient
    `patient_id`'s care team now: a current assignment and an active account. Callers add
    their order (by name, by length of service) and any further condition."""
    return (
        select(*(columns or (ProviderProfile,)))
        .select_from(CareAssignment)
        .join(ProviderProfile, ProviderProfile.id == CareAssignment.provider_id)
        .join(User, User.id == ProviderProfile.user_id)
        .where(
            CareAssignment.patient_id == patient_id,
            assignment_current(),
            User.is_active.is_(True),
        )
    )
