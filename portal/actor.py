"""Who acts, how they signed in and through which door (the `Actor`), and from where (`Origin`).

The types live here, below every layer that reads them (policy, services, the audit writer);
what they hold for a request is decided in `portal.web`: the door by `web.doors`, the rest by
`web.identity`, once, in the request's first hook. Acting for someone else (a proxy's grant,
an app's authorization) is added here, as a narrowing of the same actor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from portal.models import AuthMethod, ProxyScope, Role, User


class Door(enum.StrEnum):
    """The way a request came in. Each door answers a refusal in its own form (`web.doors`)."""

    PAGE = "page"
    API = "api"
    SOCKET = "socket"
    #: Reserved for the FHIR read API for patients' apps (`/fhir`).
    FHIR = "fhir"


#: Where a request's database session keeps its `Origin` (`Session.info`), for the audit.
ORIGIN_KEY = "portal.origin"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, as the audit records it: the server's own request id (never
    the client's), the client's address (after trusted proxies) and its user agent. The
    request's first hook puts it on the request's database session (`ORIGIN_KEY`), so every
    entry written in that session carries it, whoever acts (a person signing in included)."""

    request_id: str | None = None
    client_addr: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Delegation:
    """Acting for patient `patient_id` under proxy grant `grant_id`: only within `scopes`, until
    `ends_at`; for a teenager under a parent's or guardian's grant (`teen`), never their
    confidential results nor their own messages (`access` narrows every read by it)."""

    grant_id: int
    patient_id: int
    #: The patient's own account, when they have one ("me" in their threads).
    patient_user_id: int | None
    scopes: frozenset[ProxyScope]
    ends_at: datetime
    teen: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    """The person a request acts for, reduced to what authorization and the audit need."""

    user_id: int
    role: Role
    patient_id: int | None = None
    provider_id: int | None = None
    #: How this caller signed in; `access.require` limits what each way may do.
    via: AuthMethod = AuthMethod.SESSION
    #: The server-side session (or token) in use, when there is one.
    session_id: int | None = None
    #: The door the request came through.
    door: Door = Door.PAGE
    #: Set when the person acts for another patient (then `patient_id` is that patient's).
    acting_for: Delegation | None = None

    @classmethod
    def of(
        cls,
        user: User,
        via: AuthMethod = AuthMethod.SESSION,
        session_id: int | None = None,
        door: Door = Door.PAGE,
    ) -> Actor:
        return cls(
            user_id=user.id,
            role=user.role,
            patient_id=user.patient.id if user.patient is not None else None,
            provider_id=user.provider.id if user.provider is not None else None,
            via=via,
            session_id=session_id,
            door=door,
        )


__all__ = ["ORIGIN_KEY", "Actor", "Delegation", "Door", "Origin"]
