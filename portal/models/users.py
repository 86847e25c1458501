"""Accounts, profiles, care-team assignments and activation codes."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.db import Base, Timestamps, intpk


class Role(enum.StrEnum):
    PATIENT = "patient"
    PROVIDER = "provider"
    ADMIN = "admin"


class ReleasePreference(enum.StrEnum):
    """When a patient wants to see final results: as soon as policy allows, or once reviewed."""

    AS_SOON_AS_ALLOWED = "as_soon_as_allowed"
    AFTER_REVIEW = "after_review"


class User(Timestamps, Base):
    """A person who signs in. Email is stored lower-cased, so uniqueness is case-insensitive."""

    __tablename__ = "user_account"
    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role]
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None]
    #: The sign-in before the current one: "new since your last visit" starts here.
    previous_login_at: Mapped[datetime | None]

    #: Two-step sign-in (TOTP, RFC 6238): the shared secret, sealed with TOTP_KEY (set while
    #: enrolling, kept once on); on since `totp_enabled_at`; the newest time step a code was
    #: accepted for, so a code cannot be used twice (portal.services.two_factor).
    totp_secret: Mapped[bytes | None] = deferred(mapped_column(LargeBinary(128)))
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: The IANA zone this person reads times in; None: the clinic's (portal.zones).
    time_zone: Mapped[str | None] = mapped_column(String(64))

    patient: Mapped[PatientProfile | None] = relationship(back_populates="user", lazy="joined")
    provider: Mapped[ProviderProfile | None] = relationship(back_populates="user", lazy="joined")

    @property
    def is_staff(self) -> bool:
        """A provider or an administrator (invited, not activated like a patient)."""
        return self.role is not Role.PATIENT

    # flask-login's protocol (portal.web.identity loads users by their session, not this id)
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def display_name(self) -> str:
        if self.patient is not None:
            return self.patient.display_name
        if self.provider is not None:
            return self.provider.display_name
        return "Administrator"


class PatientProfile(Timestamps, Base):
    __tablename__ = "patient_profile"
    id: Mapped[intpk]
    #: Empty until the patient activates their account with a code staff issued.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), unique=True)
    medical_record_number: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date | None]
    primary_clinic: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    #: A tag of `i18n.LANGUAGES`; empty: the browser's language (`Accept-Language`).
    preferred_language: Mapped[str | None] = mapped_column(String(16))
    #: Which email notices the patient wants (each says only that there is something new).
    mail_lab_results: Mapped[bool] = mapped_column(Boolean, default=True)
    mail_messages: Mapped[bool] = mapped_column(Boolean, default=True)
    mail_appointments: Mapped[bool] = mapped_column(Boolean, default=True)
    mail_plans: Mapped[bool] = mapped_column(Boolean, default=True)
    release_preference: Mapped[ReleasePreference] = mapped_column(
        default=ReleasePreference.AS_SOON_AS_ALLOWED
    )

    @property
    def waits_for_review(self) -> bool:
        """Asked to see results only after a provider has reviewed them."""
        return self.release_preference is ReleasePreference.AFTER_REVIEW

    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    user: Mapped[User | None] = relationship(back_populates="patient")

    __table_args__ = (Index("ix_patient_profile_display_name", "display_name"),)


class BookingMode(enum.StrEnum):
    """What the clinic lets patients do with a provider's open slots."""

    DIRECT = "direct"  # a patient's booking is scheduled at once
    REQUEST = "request"  # a patient's booking is a request staff confirm, move or decline
    VIEW = "view"  # patients see the free times and call the clinic


class ProviderProfile(Timestamps, Base):
    __tablename__ = "provider_profile"
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    specialty: Mapped[str | None] = mapped_column(String(120))
    clinic: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    #: An email when a patient writes (off unless the provider turns it on).
    mail_messages: Mapped[bool] = mapped_column(Boolean, default=False)
    booking_mode: Mapped[BookingMode] = mapped_column(default=BookingMode.REQUEST)

    @property
    def books_directly(self) -> bool:
        return self.booking_mode is BookingMode.DIRECT

    @property
    def shows_times_only(self) -> bool:
        return self.booking_mode is BookingMode.VIEW

    user: Mapped[User] = relationship(back_populates="provider")


class CareAssignment(Timestamps, Base):
    """Provider `provider_id` cares for patient `patient_id` while `ended_at` is empty."""

    __tablename__ = "care_assignment"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_profile.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    provider: Mapped[ProviderProfile] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("patient_id", "provider_id"),
        # The scope subquery: a provider's current patients.
        Index("ix_care_assignment_provider_patient", "provider_id", "ended_at", "patient_id"),
    )


class CareAssignmentRequest(Timestamps, Base):
    """A care-team assignment waiting for a second administrator: the one who brought a
    clinical account into the portal never opens a patient's records to it alone."""

    __tablename__ = "care_assignment_request"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_profile.id"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None]
    #: "confirmed" or "cancelled" once decided; empty while it waits.
    outcome: Mapped[str | None] = mapped_column(String(16))

    provider: Mapped[ProviderProfile] = relationship(lazy="joined")


class ActivationCode(Timestamps, Base):
    """A one-time code staff give a patient to create their sign-in; only its hash is kept."""

    __tablename__ = "activation_code"
    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient_profile.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Invitation(Timestamps, Base):
    """A one-time link an admin sends a new provider or admin to set their password."""

    __tablename__ = "invitation"
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SignInThrottle(Base):
    """Failed sign-ins counted per key: an email address (whether or not it has an account,
    so the pause tells nothing) or a client address; `key` is a hash of which."""

    __tablename__ = "sign_in_throttle"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None]


class PasswordReset(Timestamps, Base):
    """A single-use link to set a new password, mailed to the account's own address."""

    __tablename__ = "password_reset"
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class RecoveryCode(Base):
    """A single-use code that stands in for the authenticator app; only its hash is kept."""

    __tablename__ = "recovery_code"
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ClinicSetting(Timestamps, Base):
    """Clinic-wide settings an admin changes (e.g. message retention), one row per key."""

    __tablename__ = "clinic_setting"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))
