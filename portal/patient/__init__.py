"""The patient area: a patient's own records."""

from flask import Blueprint

from portal.models import Role
from portal.web.delivery import mark_delivered_on_pages
from portal.web.roles import restrict_blueprint

bp = Blueprint("patient", __name__, url_prefix="/my")
restrict_blueprint(bp, Role.PATIENT)
mark_delivered_on_pages(bp)

from portal.patient import views  # noqa: E402, F401  (registers the routes)
