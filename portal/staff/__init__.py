"""The provider staff area: the records of patients in the provider's care."""

from flask import Blueprint

from portal.models import Role
from portal.web.delivery import mark_delivered_on_pages
from portal.web.roles import restrict_blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff")
restrict_blueprint(bp, Role.PROVIDER)
mark_delivered_on_pages(bp)

# Importing the view modules registers their routes on `bp`.
from portal.staff import appointment_views, views  # noqa: E402, F401
