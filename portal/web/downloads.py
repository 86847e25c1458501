"""Sending an attachment through its short-lived signed link (patient and staff areas alike)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from flask import Response, abort

from portal.access import get_or_404
from portal.audit import Subject
from portal.extensions import db
from portal.models import Attachment, Entity
from portal.services import attachments
from portal.web.audit_reads import shows
from portal.web.identity import current_actor


def content_disposition(filename: str) -> str:
    """`attachment` with the name in any script (RFC 6266 / RFC 5987 `filename*`, UTF-8) and
    an ASCII `filename` for clients that know only that (accents dropped, the rest `_`)."""
    folded = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = "".join(c if c.isalnum() or c in "-_ ." else "_" for c in folded).strip() or "file"
    if not any(c.isalnum() for c in fallback.rsplit(".", 1)[0]):
        fallback = "file" + ("." + fallback.rsplit(".", 1)[1] if "." in fallback else "")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def attachment_response(token: str) -> Response:
    """The decrypted file, when the link is valid, the signed-in user's, and the record theirs.

    A stored file that does not authenticate with its row (moved or swapped in the database)
    is never sent: 404 here, and an error in the log naming only the row's id."""
    actor = current_actor()
    attachment_id = attachments.read_link_token(token, actor.user_id)
    if attachment_id is None:
        abort(404)
    row = get_or_404(db.session, Attachment, attachment_id, actor)
    shows(Subject(Entity.ATTACHMENT, row.id, row.patient_id))
    try:
        data = attachments.decrypt(row)
    except attachments.TamperedAttachment:
        abort(404)
    response = Response(data, mimetype=row.content_type)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["Content-Length"] = str(len(data))
    return response
