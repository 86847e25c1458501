"""Blueprint-wide gates: signed in, and of the role the area is for."""

from __future__ import annotations

from flask import Blueprint, Response, abort

from portal.extensions import login_manager
from portal.models import Role
from portal.web.identity import signed_in_actor


def restrict_blueprint(bp: Blueprint, *roles: Role) -> None:
    """Every view of `bp` needs a signed-in user with one of `roles` (403 for other roles)."""

    @bp.before_request
    def _gate() -> Response | None:
        actor = signed_in_actor()
        if actor is None:
            return login_manager.unauthorized()
        if actor.role not in roles:
            abort(403)
        return None
