"""Sending an attachment through its short-lived signed link (patient and staff areas alike)."""

from __future__ import annotations

from flask import Response, abort

from portal.access import get_or_404
from portal.auth.identity import current_actor
from portal.extensions import db
from portal.models import Attachment
from portal.services import attachments


def attachment_response(token: str) -> Response:
    """The decrypted file, when the link is valid, the signed-in user's, and the record theirs."""
    actor = current_actor()
    attachment_id = attachments.read_link_token(token, actor.user_id)
    if attachment_id is None:
        abort(404)
    row = get_or_404(db.session, Attachment, attachment_id, actor)
    data = attachments.decrypt(row)
    response = Response(data, mimetype=row.content_type)
    # The stored name is already reduced to safe characters (attachments.build).
    response.headers["Content-Disposition"] = f'attachment; filename="{row.filename}"'
    response.headers["Content-Length"] = str(len(data))
    return response
