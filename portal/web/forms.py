"""Forms and the one way a page runs a change: `submit`.

A view validates its form and calls one service verb inside a unit of work; a `ServiceError`
rolls the change back and lands on the form field it names (or in a flash message when it is
about the whole request), and the view re-renders the form with status 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from flask import flash, session
from flask_babel import gettext
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.extensions import db
from portal.models import EventType
from portal.services import notifications
from portal.services.errors import ServiceError
from portal.transactions import unit_of_work

T = TypeVar("T")


def new_key() -> str:
    """A fresh idempotency key for one rendering of a send form: a double click or a retried
    post of that rendering makes one change (the service answers a known key with its first
    result)."""
    return uuid.uuid4().hex


def flash_once(message: str, category: str = "success") -> None:
    """Queue `message` unless the same notice already waits to be shown: a form resent with
    its idempotency key changed nothing the first post did not, and says so once."""
    if (category, message) not in [tuple(m) for m in session.get("_flashes", [])]:
        flash(message, category)


def show_error(form: FlaskForm | None, exc: ServiceError) -> None:
    """Put a service's refusal next to the field it names, or above the page, in the
    reader's language (services say it in English, marked with `N_`)."""
    message = gettext(exc.message)
    target = getattr(form, exc.field, None) if form is not None and exc.field else None
    if target is None or exc.field == "csrf_token":
        flash(message, "error")
        return
    target.errors = [*target.errors, message]


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What became of a change: `ok` and the service's return value, or refused."""

    ok: bool
    value: T | None = None


def run(change: Callable[[Session], T], form: FlaskForm | None = None) -> Outcome[T]:
    """Run `change` as one unit of work; a `ServiceError` is shown (see `show_error`)."""
    try:
        with unit_of_work() as session:
            return Outcome(True, change(session))
    except ServiceError as exc:
        show_error(form, exc)
        return Outcome(False)


def read_notifications(actor: Actor, type: EventType, entity_id: int | None = None) -> None:
    """Mark the reader's unread notifications of `type` (about `entity_id`) read as the page
    that shows them opens, taking the write lock only when there is one: most openings have
    nothing to mark."""
    if notifications.has_unread(db.session, actor, type=type, entity_id=entity_id):
        with unit_of_work() as w:
            notifications.mark_read(w, actor.user_id, type=type, entity_id=entity_id)


def submit(form: FlaskForm, change: Callable[[Session], T]) -> Outcome[T]:
    """Validate `form`, then `run` the change; not ok when the form or the change was refused."""
    if not form.validate_on_submit():
        return Outcome(False)
    return run(change, form)
