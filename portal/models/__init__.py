"""Every model, imported here so Alembic and the access rules see the whole schema."""

from portal.models.appointments import (
    HOLDS_SLOT,
    Appointment,
    AppointmentStatus,
    AvailabilityException,
    AvailabilityRule,
)
from portal.models.audit import AuditAction, AuditChainStart, AuditEvent, AuditOutcome, Entity
from portal.models.idempotency import IdempotentRequest
from portal.models.labs import (
    Flag,
    LabResult,
    LabResultVersion,
    ReleaseMode,
    ReleasePolicy,
    ResultStatus,
    Visibility,
)
from portal.models.mail import OutboxMail
from portal.models.messaging import (
    Attachment,
    Conversation,
    ConversationParticipant,
    Message,
    MessageStatus,
)
from portal.models.notifications import EventType, Notification
from portal.models.owned import PatientOwned
from portal.models.plans import PlanAcknowledgement, PlanStatus, TreatmentPlan, TreatmentPlanVersion
from portal.models.proxies import PARENTAL, ProxyGrant, ProxyRelationship, ProxyScope
from portal.models.sessions import AuthMethod, UserSession
from portal.models.users import (
    ActivationCode,
    BookingMode,
    CareAssignment,
    CareAssignmentRequest,
    ClinicSetting,
    Invitation,
    PasswordReset,
    PatientProfile,
    ProviderProfile,
    RecoveryCode,
    ReleasePreference,
    Role,
    SignInThrottle,
    User,
)

__all__ = [
    "PARENTAL",
    "ProxyGrant",
    "ProxyRelationship",
    "ProxyScope",
    "ActivationCode",
    "Appointment",
    "AppointmentStatus",
    "HOLDS_SLOT",
    "Attachment",
    "AuditAction",
    "AuditChainStart",
    "Entity",
    "AuditEvent",
    "AuditOutcome",
    "AuthMethod",
    "AvailabilityException",
    "AvailabilityRule",
    "CareAssignment",
    "CareAssignmentRequest",
    "ClinicSetting",
    "Conversation",
    "ConversationParticipant",
    "EventType",
    "Flag",
    "IdempotentRequest",
    "Invitation",
    "LabResult",
    "LabResultVersion",
    "Message",
    "MessageStatus",
    "Notification",
    "OutboxMail",
    "PasswordReset",
    "PatientOwned",
    "PatientProfile",
    "PlanAcknowledgement",
    "PlanStatus",
    "ProviderProfile",
    "ReleaseMode",
    "ReleasePolicy",
    "RecoveryCode",
    "BookingMode",
    "ReleasePreference",
    "ResultStatus",
    "Role",
    "SignInThrottle",
    "TreatmentPlan",
    "TreatmentPlanVersion",
    "User",
    "UserSession",
    "Visibility",
]
