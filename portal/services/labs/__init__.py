"""Lab results: publish, correct or amend (a new immutable version), release, list and read.

One module a concern; callers use the names re-exported here (`labs.create_result(...)`):

- `values`: a typed value and reference range read as numbers, and the flag they give;
- `publishing`: a new result, a new version of one (corrected, amended, final), report files;
- `release`: whether and when the patient sees a version (policy, preference, timer, review);
- `lists`: the filtered result lists and the recent rows, the test pick-list;
- `history`: one result, its versions the reader may see, and their files.
"""

from __future__ import annotations

from portal.services.labs.history import (
    attachments_of,
    result_history,
    versions_of,
)
from portal.services.labs.lists import (
    LAB_ROW_COLUMNS,
    LabFilter,
    LabRow,
    latest_page,
    latest_rows,
    list_latest,
    parse_filter,
    parse_status,
    tests_seen,
)
from portal.services.labs.publishing import (
    EARLIEST_COLLECTION,
    LabInputError,
    ResultInput,
    add_version,
    attach_current_report,
    attach_report,
    create_result,
    finalize,
)
from portal.services.labs.release import (
    CATEGORY_RULES,
    MAX_HOLD,
    HeldResult,
    Hold,
    HoldError,
    ReleaseError,
    ReleaseState,
    awaiting_release,
    category_rules_on,
    describe_policy,
    held_results,
    held_version,
    hold_result,
    release_due,
    release_policy_for,
    release_state,
    release_version,
    released_to_patient,
    reschedule_held,
    review_and_release,
)
from portal.services.labs.values import (
    MAX_MAGNITUDE,
    TOO_LARGE,
    compute_flag,
    parse_range,
    parse_value,
)

__all__ = [
    "CATEGORY_RULES",
    "Hold",
    "HoldError",
    "MAX_HOLD",
    "category_rules_on",
    "hold_result",
    "EARLIEST_COLLECTION",
    "HeldResult",
    "LAB_ROW_COLUMNS",
    "LabFilter",
    "LabInputError",
    "LabRow",
    "MAX_MAGNITUDE",
    "ReleaseError",
    "ReleaseState",
    "ResultInput",
    "TOO_LARGE",
    "add_version",
    "attach_current_report",
    "attach_report",
    "attachments_of",
    "awaiting_release",
    "compute_flag",
    "create_result",
    "describe_policy",
    "finalize",
    "held_results",
    "held_version",
    "latest_page",
    "latest_rows",
    "list_latest",
    "parse_filter",
    "parse_range",
    "parse_status",
    "parse_value",
    "release_due",
    "release_policy_for",
    "release_state",
    "release_version",
    "released_to_patient",
    "reschedule_held",
    "result_history",
    "review_and_release",
    "tests_seen",
    "versions_of",
]
