"""Accounts: patients, providers and admins, signing in, activation codes, invitations,
passwords, care-team assignments.

One module a concern; callers use the names re-exported here (`accounts.assign_provider(...)`):

- `users`: the account error, checks before an account is made, registering a patient,
  deactivating an account, the active providers;
- `sign_in`: a password and a second step, with pauses after failures;
- `addresses`: who set an address credentials are mailed to, who brought an account in;
- `activation`: a patient's activation code, and resetting a patient's access;
- `invitations`: staff accounts and their invitations;
- `passwords`: changing a password and what a new one ends;
- `assignments`: changing a care team, with a second administrator's confirmation.
"""

from __future__ import annotations

from portal.services.accounts.activation import (
    ACTIVATION_VALIDITY,
    INVALID_CODE,
    activate_patient,
    issue_activation_code,
    reset_patient_access,
)
from portal.services.accounts.addresses import (
    address_set_by_admin,
    check_not_introduced_by,
    end_mailed_links,
)
from portal.services.accounts.assignments import (
    CareTeamScreen,
    assign_provider,
    care_team_screen,
    decide_assignment,
    unassign_provider,
)
from portal.services.accounts.invitations import (
    INVALID_INVITATION,
    INVITATION_VALIDITY,
    accept_invitation,
    create_staff,
    resend_invitation,
)
from portal.services.accounts.passwords import (
    change_password,
    record_password_change,
    set_password,
)
from portal.services.accounts.sign_in import (
    FAILED_SIGN_IN,
    SignIn,
    authenticate,
    authenticate_code,
)
from portal.services.accounts.users import (
    AccountError,
    active_provider_for_user,
    active_providers,
    check_new_email,
    check_new_password,
    create_user,
    find_user_by_email,
    mrn_taken,
    normalise_email,
    register_patient,
    set_active,
)

__all__ = [
    "ACTIVATION_VALIDITY",
    "AccountError",
    "CareTeamScreen",
    "FAILED_SIGN_IN",
    "INVALID_CODE",
    "INVALID_INVITATION",
    "INVITATION_VALIDITY",
    "SignIn",
    "accept_invitation",
    "activate_patient",
    "active_provider_for_user",
    "active_providers",
    "address_set_by_admin",
    "assign_provider",
    "authenticate",
    "authenticate_code",
    "care_team_screen",
    "change_password",
    "check_new_email",
    "check_new_password",
    "check_not_introduced_by",
    "create_staff",
    "create_user",
    "decide_assignment",
    "end_mailed_links",
    "find_user_by_email",
    "issue_activation_code",
    "mrn_taken",
    "normalise_email",
    "record_password_change",
    "register_patient",
    "resend_invitation",
    "reset_patient_access",
    "set_active",
    "set_password",
    "unassign_provider",
]
