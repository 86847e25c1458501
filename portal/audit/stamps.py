"""Checkpoints that their sink's admin cannot rewrite (issue 21, point 4): each checkpoint is
signed with Ed25519 (AUDIT_CHECKPOINT_KEY, a secret distinct from the chain's HMAC key) and,
when TSA_URL names one, time-stamped by an RFC 3161 time-stamp authority, whose token proves
the checkpoint existed at that time to anyone holding the authority's certificate.

The signature is checked with the key's public half alone (AUDIT_CHECKPOINT_PUBLIC_KEY, or
derived from the secret), so an auditor can verify without being able to sign. Tokens are
checked with `openssl ts -verify` against AUDIT_TSA_CA_FILE.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

#: How long the worker waits for the time-stamp authority before the checkpoint is retried.
TSA_TIMEOUT = 10.0


class StampError(RuntimeError):
    """A checkpoint could not be signed or time-stamped (nothing is written then)."""


def private_key(secret: str) -> Ed25519PrivateKey:
    """The Ed25519 key AUDIT_CHECKPOINT_KEY names: derived from the secret, so any long random
    string serves and no key file format is needed."""
    seed = hashlib.sha256(b"portal-audit-checkpoint-key\n" + secret.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@dataclass(frozen=True, slots=True)
class StampConfig:
    key: Ed25519PrivateKey | None
    public: Ed25519PublicKey | None
    tsa_url: str | None
    tsa_ca_file: str | None


def configured(config: Mapping[str, Any]) -> StampConfig:
    secret = str(config.get("AUDIT_CHECKPOINT_KEY") or "")
    key = private_key(secret) if secret else None
    raw_public = str(config.get("AUDIT_CHECKPOINT_PUBLIC_KEY") or "")
    public = (
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(raw_public))
        if raw_public
        else (key.public_key() if key is not None else None)
    )
    return StampConfig(
        key=key,
        public=public,
        tsa_url=str(config.get("TSA_URL") or "") or None,
        tsa_ca_file=str(config.get("AUDIT_TSA_CA_FILE") or "") or None,
    )


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode()


def signature_ok(public: Ed25519PublicKey, message: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- RFC 3161 ---------------------------------------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


_SHA256 = _der(0x30, _der(0x06, bytes.fromhex("608648016503040201")) + _der(0x05, b""))


def timestamp_request(message: bytes) -> bytes:
    """A DER TimeStampReq for SHA-256(`message`), asking for the authority's certificate."""
    imprint = _der(0x30, _SHA256 + _der(0x04, hashlib.sha256(message).digest()))
    nonce = _integer(secrets.randbits(63))
    return _der(0x30, _integer(1) + imprint + nonce + _der(0x01, b"\xff"))


def _status(response: bytes) -> int:
    """The PKIStatus of a DER TimeStampResp (0 granted, 1 granted with modifications)."""

    # SEQUENCE { PKIStatusInfo SEQUENCE { status INTEGER, ... }, token ... }
    def skip_header(data: bytes, at: int) -> int:
        length = data[at + 1]
        return at + 2 + (length & 0x7F if length & 0x80 else 0)

    inner = skip_header(response, 0)
    status_at = skip_header(response, inner)
    if response[status_at] != 0x02:
        raise StampError("the time-stamp authority's answer is not a TimeStampResp")
    return response[status_at + 2]


def timestamp(url: str, message: bytes) -> str:
    """The authority's answer (a TimeStampResp with its token) for `message`, base64."""
    request = urllib.request.Request(  # noqa: S310  (the operator's configured https/http URL)
        url,
        data=timestamp_request(message),
        headers={"Content-Type": "application/timestamp-query"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TSA_TIMEOUT) as answer:  # noqa: S310
            body = answer.read()
    except OSError as exc:
        raise StampError(f"the time-stamp authority did not answer ({type(exc).__name__})") from exc
    try:
        status = _status(body)
    except IndexError as exc:
        raise StampError("the time-stamp authority's answer is not a TimeStampResp") from exc
    if status not in (0, 1):
        raise StampError(f"the time-stamp authority refused (status {status})")
    return base64.b64encode(body).decode()


def token_ok(ca_file: str, message: bytes, token: str | None) -> bool:
    """Whether `token` (a TimeStampResp, base64) time-stamps exactly `message` and is signed
    by an authority `ca_file` vouches for (`openssl ts -verify`)."""
    if not token:
        return False
    try:
        raw = base64.b64decode(token, validate=True)
    except ValueError:
        return False
    with tempfile.TemporaryDirectory(prefix="portal-tsr-") as folder:
        path = Path(folder) / "response.tsr"
        path.write_bytes(raw)
        done = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
            [
                shutil.which("openssl") or "/usr/bin/openssl",
                "ts",
                "-verify",
                "-digest",
                hashlib.sha256(message).hexdigest(),
                "-in",
                str(path),
                "-CAfile",
                ca_file,
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
    return done.returncode == 0
