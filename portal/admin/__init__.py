"""Administration: accounts, care teams, settings and the audit log. No clinical content."""

from flask import Blueprint

from portal.models import Role
from portal.web.roles import restrict_blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
restrict_blueprint(bp, Role.ADMIN)

# Importing the view modules registers their routes on `bp`.
from portal.admin import audit_views, views  # noqa: E402, F401
