"""Proxy access through the API: the records the caller may open for someone else (`GET /me`'s
`proxyFor`), and who may open the caller's own. A proxy then calls the patient's routes
(`/patients/{id}/...`) with the patient's id, within the grant
(`web.identity.actor_for_record`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.access import Actor
from portal.api import bp
from portal.api.operations import operation
from portal.api.schemas import Instant, Schema, example_of, with_example
from portal.audit import audited
from portal.models import AuditAction, Entity
from portal.services import proxies

TAG = "Proxy access"


class ProxyForOut(Schema):
    """A record the caller may open for someone else now."""

    model_config = with_example(
        {
            "patientId": 12,
            "displayName": "Sam Martin",
            "relationship": "parent",
            "scopes": ["appointments", "lab-results"],
            "endsAt": "2027-12-07T09:00:00Z",
        }
    )

    patient_id: int
    display_name: str
    relationship: str
    scopes: list[str]
    ends_at: Instant


class ProxyOut(Schema):
    """Someone who may open the caller's record, and within what."""

    model_config = with_example(
        {
            "id": 3,
            "userId": 4,
            "displayName": "Alice Martin",
            "relationship": "parent",
            "scopes": ["lab-results"],
            "startsAt": "2026-12-07T09:00:00Z",
            "endsAt": "2027-12-07T09:00:00Z",
        }
    )

    id: int
    user_id: int
    display_name: str
    relationship: str
    scopes: list[str]
    starts_at: Instant
    ends_at: Instant


class ProxyListOut(Schema):
    model_config = with_example({"items": [example_of(ProxyOut)]})

    items: list[ProxyOut]


def proxy_for(session: Session, actor: Actor) -> list[ProxyForOut]:
    """Each record the caller may open now for someone else (a child, a person they care for),
    by the patient's name; grants not begun, ended, expired or outgrown are not listed."""
    return [
        ProxyForOut(
            patient_id=held.patient_id,
            display_name=held.display_name,
            relationship=str(held.relationship),
            scopes=sorted(held.delegation.scopes),
            ends_at=held.delegation.ends_at,
        )
        for held in proxies.held_records(session, actor)
    ]


@operation(
    bp,
    "GET",
    "/me/proxies",
    summary="Who may open my record",
    tag=TAG,
    response=ProxyListOut,
    errors=(403,),
)
@audited(AuditAction.VIEW, Entity.PROXY_GRANT)
def my_proxies(session: Session, actor: Actor) -> ProxyListOut:
    """Every grant on the caller's own record that nobody has ended, with its scopes and end.
    Patients only (a teenager sees their parents' grants too)."""
    return ProxyListOut(
        items=[
            ProxyOut(
                id=grant.id,
                user_id=user.id,
                display_name=user.display_name,
                relationship=str(grant.relationship),
                scopes=sorted(grant.scope_set),
                starts_at=grant.starts_at,
                ends_at=grant.ends_at,
            )
            for grant, user in proxies.grants_on_my_record(session, actor)
        ]
    )


@operation(
    bp,
    "DELETE",
    "/me/proxies/<int:grant_id>",
    summary="Remove someone's access to my record",
    tag=TAG,
    status=204,
)
def remove_proxy(session: Session, actor: Actor, grant_id: int) -> None:
    """Ends the grant now: the holder's next request on every door opens nothing. The
    holder may also give up a grant of their own this way. 404 for anyone else's."""
    proxies.end(session, actor, grant_id, "removed")
