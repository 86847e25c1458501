"""Email notices: staged in the same transaction as the change they tell of, sent later by the
background worker (`portal.jobs`), never while a request waits.

Their words are fixed per kind and name no test, value, diagnosis, message subject or body
("You have a new message in your patient portal", and a link): mail leaves the clinic's
control, so it only says that there is something to see. A notice still waiting to be sent is
not doubled by the next event of its kind. Patients choose per kind on their profile (at their
contact address, else their sign-in address); providers may ask for one when a patient writes.

Delivery: `MAIL_URL` (`smtp://user:password@host:587?tls=starttls`, `smtps://...:465`);
without it, each mail is written as a file under `MAIL_DIR` (`instance/mail/` by default),
which is what development and the tests read.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from flask_babel import LazyString, force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import null, select, union_all
from sqlalchemy.orm import Session

from portal.access import unscoped
from portal.db import utcnow
from portal.i18n import LOCALES
from portal.models import EventType, OutboxMail, PatientProfile, ProviderProfile, User

#: (subject, first line) per kind: no health information, by design. Translated for each
#: recipient, in the language they chose (see `stage_notices`).
NOTICES: dict[EventType, tuple[LazyString, LazyString]] = {
    EventType.LAB_RESULT_PUBLISHED: (
        _l("A new result in your patient portal"),
        _l("A new lab result is ready for you in your patient portal."),
    ),
    EventType.MESSAGE_CREATED: (
        _l("A new message in your patient portal"),
        _l("You have a new message in your patient portal."),
    ),
    EventType.APPOINTMENT_UPDATED: (
        _l("An appointment changed in your patient portal"),
        _l("One of your appointments was booked, changed or cancelled."),
    ),
    EventType.TREATMENT_PLAN_UPDATED: (
        _l("Your treatment plan was updated"),
        _l("Your care team updated your treatment plan. Please read it in your patient portal."),
    ),
}

#: Minutes to wait after the 1st, 2nd, ... failed attempt; then it is given up.
BACKOFF_MINUTES = (1, 5, 15, 60, 240, 720)
BATCH = 50


#: The patient's choice that each kind of notice honours.
_PATIENT_CHOICE = {
    EventType.LAB_RESULT_PUBLISHED: PatientProfile.mail_lab_results,
    EventType.MESSAGE_CREATED: PatientProfile.mail_messages,
    EventType.APPOINTMENT_UPDATED: PatientProfile.mail_appointments,
    EventType.TREATMENT_PLAN_UPDATED: PatientProfile.mail_plans,
}


def _recipients_stmt(kind: EventType) -> Any:
    """(user id, sign-in address, contact address, language) of the users who want this
    kind: patients by their choices, providers who asked to hear of patients' messages."""
    patients = (
        select(User.id, User.email, PatientProfile.contact_email, PatientProfile.preferred_language)
        .join(PatientProfile, PatientProfile.user_id == User.id)
        .where(User.is_active.is_(True), _PATIENT_CHOICE[kind].is_(True))
    )
    if kind is not EventType.MESSAGE_CREATED:
        return patients
    providers = (
        select(User.id, User.email, null(), null())
        .join(ProviderProfile, ProviderProfile.user_id == User.id)
        .where(User.is_active.is_(True), ProviderProfile.mail_messages.is_(True))
    )
    return union_all(patients, providers)


def stage_notices(
    session: Session, user_ids: Iterable[int], *, kind: EventType, portal_url: str
) -> None:
    """A notice for each of `user_ids` who asked for mail, unless one of this kind is already
    waiting for them. Called by `notifications.stage`, in the change's transaction."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    chosen = _recipients_stmt(kind).subquery()
    wanted = unscoped(
        select(chosen).where(chosen.c.id.in_(ids)), "mail: the recipients' own addresses"
    )
    waiting = set(
        session.scalars(
            select(OutboxMail.user_id).where(
                OutboxMail.user_id.in_(ids),
                OutboxMail.kind == str(kind),
                OutboxMail.sent_at.is_(None),
                OutboxMail.attempts < len(BACKOFF_MINUTES),
            )
        )
    )
    subject, line = NOTICES[kind]
    now = utcnow()
    for user_id, email, contact, language in session.execute(wanted):
        if user_id in waiting:
            continue
        # Each in the recipient's own language (`recipient_locale`'s rule, from the row),
        # whoever made the change and whatever language they read the portal in.
        with force_locale(mail_locale(language)):
            text = (str(subject), _body(str(line), portal_url))
        session.add(
            OutboxMail(
                user_id=user_id,
                to_address=contact or email,
                kind=str(kind),
                subject=text[0],
                body=text[1],
                next_attempt_at=now,
            )
        )


#: Writes an account mail's (subject, body); `stage_account_notice` calls it in the recipient's
#: language, so its `gettext` calls must run inside it.
Compose = Callable[[], tuple[str, str]]


def mail_locale(tag: str | None) -> str:
    """The Babel locale of a mail to someone who chose `tag`: their language, else English (a
    mail has no browser to ask, and a tag the portal no longer speaks reads as none)."""
    return LOCALES.get(tag or "", LOCALES["en"])


def recipient_locale(person: User | PatientProfile) -> str:
    """The language every mail to `person` is written in: a patient's own choice; staff, and
    patients who chose none, English. Never the language of whoever caused the mail."""
    patient = person if isinstance(person, PatientProfile) else person.patient
    return mail_locale(patient.preferred_language if patient is not None else None)


def stage_account_notice(
    session: Session,
    to: User | PatientProfile,
    *,
    kind: str,
    compose: Compose,
    address: str | None = None,
) -> None:
    """A mail about the account itself (a reset link, a changed password, an activation code),
    whatever the notice preferences: the person must learn of it. Written in the recipient's
    language (`recipient_locale`) whoever triggers it; sent to `address`, else an account's
    sign-in address or a patient's contact address (the one they have before an account)."""
    user_id: int | None
    own_address: str | None
    if isinstance(to, User):
        user_id, own_address = to.id, to.email
    else:
        user_id, own_address = to.user_id, to.contact_email
    to_address = address or own_address
    if not to_address:
        raise ValueError("an account mail needs an address")  # callers check it first
    with force_locale(recipient_locale(to)):
        subject, body = compose()
    session.add(
        OutboxMail(
            user_id=user_id,
            to_address=to_address,
            kind=kind,
            subject=subject,
            body=body,
            next_attempt_at=utcnow(),
        )
    )


def _body(line: str, portal_url: str) -> str:
    home = portal_url.rstrip("/") + "/"
    link = gettext("Sign in to see it: %(url)s", url=home)
    privacy = gettext(
        "For your privacy this email says nothing about your health. You can choose which "
        "emails you get on your profile page in the portal."
    )
    return f"{line}\n\n{link}\n\n{privacy}\n"


# --- Delivery ---------------------------------------------------------------------------------


class MailNotSent(Exception):
    """The mail server refused or could not be reached; the notice is tried again later."""


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class FileTransport:
    """Development and tests: each mail a file under `directory`."""

    directory: Path

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S}-{message['X-Portal-Mail-Id']}.eml"
        (self.directory / name).write_bytes(message.as_bytes())


@dataclass(frozen=True, slots=True)
class SmtpTransport:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: str  # "starttls", "ssl" or "none"
    timeout: float = 10.0

    def send(self, message: EmailMessage) -> None:
        try:
            if self.tls == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            # The class and the server's code say what went wrong; the mail is not quoted.
            raise MailNotSent(type(exc).__name__ + _smtp_code(exc)) from exc


def _smtp_code(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    return f" {code}" if code else ""


def transport_from(config: dict[str, Any], instance_path: str) -> Transport:
    """The transport `MAIL_URL` names, or the mail folder."""
    url = config.get("MAIL_URL")
    if not url:
        return FileTransport(Path(config.get("MAIL_DIR") or Path(instance_path) / "mail"))
    parts = urlsplit(url)
    tls = parse_qs(parts.query).get("tls", ["ssl" if parts.scheme == "smtps" else "starttls"])[0]
    return SmtpTransport(
        host=parts.hostname or "localhost",
        port=parts.port or (465 if parts.scheme == "smtps" else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def send_due(session: Session, transport: Transport, sender: str) -> int:
    """Send what is due, in order; a failure is retried with back-off. Returns how many were
    sent. The worker runs this with the job claimed, so two workers never send one mail."""
    now = utcnow()
    due = session.scalars(
        select(OutboxMail)
        .where(
            OutboxMail.sent_at.is_(None),
            OutboxMail.next_attempt_at <= now,
            OutboxMail.attempts < len(BACKOFF_MINUTES),
        )
        .order_by(OutboxMail.id)
        .limit(BATCH)
    ).all()
    sent = 0
    for mail in due:
        try:
            transport.send(_message(mail, sender))
        except MailNotSent as exc:
            mail.attempts += 1
            mail.last_error = str(exc)[:200]
            mail.next_attempt_at = _retry_at(now, mail.attempts)
            continue
        mail.sent_at = now
        sent += 1
    session.flush()
    return sent


def _retry_at(now: datetime, attempts: int) -> datetime:
    minutes = BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES)) - 1]
    return now + timedelta(minutes=minutes)


def _message(mail: OutboxMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["X-Portal-Mail-Id"] = str(mail.id)
    message.set_content(mail.body)
    return message
