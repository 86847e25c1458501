"""The one error type the services raise for input or state they cannot accept.

Pages show it as an inline error on the named form field (status 422, `portal.web.forms`);
the JSON API maps it to problem+json with its `status` (422, or 409 for a conflict). `field`
names the input at fault, or is `None` when the whole request is (a plan that is no longer a
draft).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def N_(message: str) -> str:
    """Mark `message` for the translation catalogs (pybabel's `N_` keyword) and return it as
    it is: services speak English (the API, the logs); pages translate the message when they
    show it (`web.forms.show_error`). A message built with values is translated where it is
    made instead, with `flask_babel.gettext`."""
    return message


class ServiceError(ValueError):
    """Input or state a service verb refuses, with a message the person can act on.

    `status` is the API's answer: 422, or 409 for a subclass that is a conflict with what
    someone else just did. Pages show either on the form (status 422, which htmx swaps in).
    """

    status: int = 422

    def __init__(
        self,
        field: str | None,
        message: str,
        *,
        record: Callable[[Session], None] | None = None,
        keep: bool = False,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        #: The refusal wrote nothing but its own record (an attempt claimed before a password
        #: check, its denied entry): `unit_of_work` commits it instead of rolling back, so no
        #: other attempt can come between the rollback and a record written afterwards.
        self.keep = keep
        #: What must be kept of the refusal itself (its audit entry, a failure counted toward
        #: a pause): `unit_of_work` rolls the change back, then commits this on its own.
        self.record = record


class StorageFull(ServiceError):
    """The database could not grow (its disk, or its size limit, is full): the change rolled
    back whole. Not the person's fault and not a broken rule: the API answers 507; pages show
    it above the form they re-render, what was typed kept (status 422, the one htmx swaps in,
    as for a conflict). Raised by `unit_of_work` (see `transactions.is_storage_full`)."""

    status = 507

    def __init__(self) -> None:
        super().__init__(
            None,
            N_(
                "The portal's storage is full, so nothing was saved: not the file, and "
                "nothing else you sent. Please try again later, or let the clinic know."
            ),
        )
