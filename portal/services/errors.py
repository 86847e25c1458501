"""The one error type the services raise for input or state they cannot accept.

Pages show it as an inline error on the named form field (status 422, `portal.web.forms`);
the JSON API maps it to problem+json 422. `field` names the input at fault, or is `None`
when the whole request is (a plan that is no longer a draft, a slot that was just taken).
"""

from __future__ import annotations


class ServiceError(ValueError):
    """Input or state a service verb refuses, with a message the person can act on."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
