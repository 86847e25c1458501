"""The signed-in person: `GET /me`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.access import Actor
from portal.api import bp
from portal.api.operations import operation
from portal.api.proxies import ProxyForOut, proxy_for
from portal.api.schemas import Instant, PatientOut, ProviderOut, Schema, example_of, with_example
from portal.audit import audited
from portal.models import AuditAction, Entity
from portal.web.identity import current_account


class MeOut(Schema):
    model_config = with_example(
        {
            "id": 4,
            "role": "patient",
            "email": "sam.example@example.org",
            "createdAt": "2026-01-12T10:04:31Z",
            "updatedAt": "2026-11-30T16:10:00Z",
            "signedInWith": "token",
            "patient": example_of(PatientOut),
            "provider": None,
            "proxyFor": [example_of(ProxyForOut)],
        }
    )

    id: int
    role: str
    email: str
    created_at: Instant
    updated_at: Instant
    #: How this request signed in: "session" (a browser) or "token" (an app).
    signed_in_with: str
    patient: PatientOut | None = None
    provider: ProviderOut | None = None
    #: The records this person may open for someone else now (proxy access).
    proxy_for: list[ProxyForOut] = []


@operation(
    bp,
    "GET",
    "/me",
    summary="The signed-in user",
    tag="Users",
    response=MeOut,
)
@audited(AuditAction.VIEW, Entity.USER_ACCOUNT)
def me(session: Session, actor: Actor) -> MeOut:
    """The account, with its patient or provider profile."""
    user = current_account()
    assert user is not None  # the blueprint's gate answered 401 otherwise
    return MeOut(
        id=user.id,
        role=str(user.role),
        email=user.email,
        created_at=user.created_at,
        updated_at=user.updated_at,
        signed_in_with=str(actor.via),
        patient=PatientOut.model_validate(user.patient) if user.patient else None,
        provider=ProviderOut.model_validate(user.provider) if user.provider else None,
        proxy_for=proxy_for(session, actor),
    )
