"""Blueprint-wide gates: signed in, and of the role the area is for."""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask_login import current_user

from portal.extensions import login_manager
from portal.models import Role


def restrict_blueprint(bp: Blueprint, *roles: Role) -> None:
    """Every view of `bp` needs a signed-in user with one of `roles` (403 for other roles)."""

    @bp.before_request
    def _gate() -> Response | None:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.role not in roles:
            abort(403)
        return None
