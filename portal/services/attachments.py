"""Attachments: type checked by content, limited per file and per message, encrypted at rest
bound to their row and patient, downloaded through short-lived links."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from flask_babel import gettext
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.models import Attachment
from portal.services.errors import ServiceError

ALLOWED = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
LINK_MAX_AGE_SECONDS = 300
#: How a row's ciphertext is sealed: 1 (rows from before 0014) authenticates the content's
#: digest only; 2 also the row's own random `blob_id` and its patient, so a blob moved to
#: another row or patient fails to decrypt.
SEAL_VERSION = 2

log = logging.getLogger(__name__)


class AttachmentError(ServiceError):
    """A file that cannot be attached (type, size); always about the `attachment` field."""

    def __init__(self, message: str) -> None:
        super().__init__("attachment", message)


def sniff(data: bytes) -> str | None:
    """The content type by magic number; the file's name and declared type are not trusted."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def _aead() -> AESGCM:
    key = hashlib.sha256(current_app.config["ATTACHMENT_KEY"].encode()).digest()
    return AESGCM(key)


def seal(data: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + _aead().encrypt(nonce, data, associated)


def open_sealed(blob: bytes, associated: bytes) -> bytes:
    return _aead().decrypt(blob[:12], blob[12:], associated)


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    data: bytes
    #: How many bytes were sent, when more than `data` holds (the request keeps no more of a
    #: file than the limit allows, `web.uploads`); None: `len(data)`.
    received: int | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.received is None else self.received


@dataclass(frozen=True, slots=True)
class Limits:
    """What may be attached: per file, and per message (count and total size)."""

    file_bytes: int
    files: int
    total_bytes: int

    @property
    def one_file(self) -> str:
        """For a form that takes one file (its label names the types)."""
        return gettext("At most %(size)s.", size=_mb(self.file_bytes))

    @property
    def wording(self) -> str:
        return gettext(
            "PDF, PNG or JPEG. Up to %(files)d files and %(total)s in all per message, "
            "%(each)s each.",
            files=self.files,
            total=_mb(self.total_bytes),
            each=_mb(self.file_bytes),
        )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def limits() -> Limits:
    config = current_app.config
    return Limits(
        config["ATTACHMENT_MAX_BYTES"],
        config["ATTACHMENT_MAX_FILES"],
        config["ATTACHMENT_MAX_TOTAL_BYTES"],
    )


def build_all(
    uploads: Sequence[Upload], *, patient_id: int, uploaded_by_id: int
) -> list[Attachment]:
    """Encrypted rows for the files of one message, or AttachmentError when one file, their
    number or their total size is past the limits (nothing is built then)."""
    allowed = limits()
    if len(uploads) > allowed.files:
        raise AttachmentError(
            gettext(
                "Attach at most %(most)d files to one message (%(chosen)d chosen).",
                most=allowed.files,
                chosen=len(uploads),
            )
        )
    for upload in uploads:
        _check_size(upload, allowed.file_bytes)
    total = sum(u.size for u in uploads)
    if total > allowed.total_bytes:
        raise AttachmentError(
            gettext(
                "The files come to %(total)s; one message can carry at most %(most)s. "
                "Send the others in another message.",
                total=_mb(total),
                most=_mb(allowed.total_bytes),
            )
        )
    return [build(u, patient_id=patient_id, uploaded_by_id=uploaded_by_id) for u in uploads]


def _check_size(upload: Upload, limit: int) -> None:
    if not upload.data:
        raise AttachmentError(gettext("The file is empty."))
    if upload.size > limit or len(upload.data) > limit:
        name = os.path.basename(upload.filename)[:80]
        raise AttachmentError(
            gettext(
                "%(name)s is %(size)s. Files can be at most %(most)s.",
                name=name,
                size=_mb(upload.size),
                most=_mb(limit),
            )
        )


def build(upload: Upload, *, patient_id: int, uploaded_by_id: int) -> Attachment:
    """An encrypted attachment row for `upload`, or AttachmentError with a message for the form."""
    _check_size(upload, limits().file_bytes)
    content_type = sniff(upload.data)
    if content_type is None:
        raise AttachmentError(gettext("Only PDF, PNG and JPEG files can be attached."))
    stem = os.path.splitext(os.path.basename(upload.filename or "file"))[0][:150] or "file"
    safe = "".join(c if c.isalnum() or c in "-_ ." else "_" for c in stem) + ALLOWED[content_type]
    digest = hashlib.sha256(upload.data).hexdigest()
    row = Attachment(
        patient_id=patient_id,
        filename=safe,
        content_type=content_type,
        size_bytes=len(upload.data),
        sha256=digest,
        blob_id=secrets.token_hex(16),
        seal_version=SEAL_VERSION,
        uploaded_by_id=uploaded_by_id,
    )
    row.ciphertext = seal(upload.data, associated_data(row))
    return row


def associated_data(row: Attachment) -> bytes:
    """What a row's ciphertext authenticates besides itself (see `SEAL_VERSION`)."""
    if row.seal_version == 1:
        return row.sha256.encode()
    return f"attachment:v2:{row.blob_id}:{row.patient_id}:{row.sha256}".encode()


class TamperedAttachment(Exception):
    """A stored file that does not belong to its row: moved, swapped or altered."""


def decrypt(attachment: Attachment) -> bytes:
    """The file, or TamperedAttachment when its ciphertext does not authenticate with this row
    (its id, patient and digest) or decrypts to something else than its digest names."""
    try:
        data = open_sealed(attachment.ciphertext, associated_data(attachment))
    except InvalidTag:
        data = None
    if data is None or hashlib.sha256(data).hexdigest() != attachment.sha256:
        # Ids only: never the name or the content.
        log.error("attachment id=%s does not authenticate with its row", attachment.id)
        raise TamperedAttachment(attachment.id)
    return data


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="attachment-link")


def link_token(attachment_id: int, user_id: int) -> str:
    """A token naming the attachment and who may use it; valid for a few minutes."""
    return _signer().dumps([attachment_id, user_id])


def read_link_token(token: str, user_id: int) -> int | None:
    try:
        attachment_id, owner = _signer().loads(token, max_age=LINK_MAX_AGE_SECONDS)
    except (BadSignature, SignatureExpired, ValueError, TypeError):
        return None
    return int(attachment_id) if owner == user_id else None
