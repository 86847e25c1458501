"""Declaring at the route which reads are sensitive: `@audited(...)` or `@audit_exempt`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask

from portal.models import AuditAction, Entity

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Subject:
    """The record a response showed: what kind, which one, and whose (the patient's profile)."""

    entity_type: Entity
    entity_id: int | str | None = None
    patient_id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditSpec:
    action: AuditAction
    entity_type: Entity
    #: The view argument that names the record shown, e.g. "result_id".
    id_arg: str | None = None


def audited(
    action: AuditAction, entity_type: Entity, id_arg: str | None = None
) -> Callable[[F], F]:
    """Mark a view as showing PHI: each request it answers records one audit entry."""

    def mark(view: F) -> F:
        view.audit = AuditSpec(action, entity_type, id_arg)  # type: ignore[attr-defined]
        return view

    return mark


def audit_exempt(view: F) -> F:
    """Mark a view as showing no PHI (or as recording its own entries inside a service)."""
    view.audit_exempt = True  # type: ignore[attr-defined]
    return view


def audit_spec_of(view: Callable[..., Any] | None) -> AuditSpec | None:
    """What `view` was declared to show (`@audited`), or None."""
    return getattr(view, "audit", None)


def audit_spec_for(app: Flask, endpoint: str | None) -> AuditSpec | None:
    if endpoint is None:
        return None
    return audit_spec_of(app.view_functions.get(endpoint))
