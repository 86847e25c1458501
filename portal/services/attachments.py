"""Attachments: type checked by content, encrypted at rest, downloaded through short-lived links."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.models import Attachment
from portal.services.errors import ServiceError

ALLOWED = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
LINK_MAX_AGE_SECONDS = 300


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


def build(upload: Upload, *, patient_id: int, uploaded_by_id: int) -> Attachment:
    """An encrypted attachment row for `upload`, or AttachmentError with a message for the form."""
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    if not upload.data:
        raise AttachmentError("The file is empty.")
    if len(upload.data) > limit:
        raise AttachmentError(f"Files can be at most {limit // (1024 * 1024)} MB.")
    content_type = sniff(upload.data)
    if content_type is None:
        raise AttachmentError("Only PDF, PNG and JPEG files can be attached.")
    stem = os.path.splitext(os.path.basename(upload.filename or "file"))[0][:150] or "file"
    safe = "".join(c if c.isalnum() or c in "-_ ." else "_" for c in stem) + ALLOWED[content_type]
    digest = hashlib.sha256(upload.data).hexdigest()
    return Attachment(
        patient_id=patient_id,
        filename=safe,
        content_type=content_type,
        size_bytes=len(upload.data),
        sha256=digest,
        ciphertext=seal(upload.data, digest.encode()),
        uploaded_by_id=uploaded_by_id,
    )


def decrypt(attachment: Attachment) -> bytes:
    return open_sealed(attachment.ciphertext, attachment.sha256.encode())


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
