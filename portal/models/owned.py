"""The marker for tables that hold a patient's protected health information."""

from __future__ import annotations

from sqlalchemy.orm import Mapped


class PatientOwned:
    """Rows that belong to one patient. Reads of these go through `portal.access.scope`."""

    __abstract__ = True
    patient_id: Mapped[int]
