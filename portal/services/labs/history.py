"""One lab result: its versions the reader may see, and their files."""

from __future__ import annotations

from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal.access import Actor, Permission, RoleScope, get_or_404, reader, require, scoped
from portal.models import Attachment, LabResult, LabResultVersion


def version_stmt(rs: RoleScope) -> Select[LabResultVersion]:
    """Version `:version` of result `:result_id`."""
    stmt = select(LabResultVersion).where(
        LabResultVersion.lab_result_id == bindparam("result_id", type_=Integer),
        LabResultVersion.version == bindparam("version", type_=Integer),
    )
    return rs.scope(stmt, LabResultVersion)


def _versions_stmt(rs: RoleScope) -> Select[LabResultVersion]:
    """The versions of result `:result_id`, newest first."""
    stmt = (
        select(LabResultVersion)
        .where(LabResultVersion.lab_result_id == bindparam("result_id", type_=Integer))
        .order_by(LabResultVersion.version.desc())
    )
    return rs.scope(stmt, LabResultVersion)


def versions_of(session: Session, actor: Actor, result: LabResult) -> list[LabResultVersion]:
    """The versions of `result` the actor may see, newest first."""
    params = reader(actor, result_id=result.id)
    return list(session.scalars(scoped(_versions_stmt, actor), params))


def result_history(
    session: Session, actor: Actor, result_id: int
) -> tuple[LabResult, list[LabResultVersion]]:
    """A result and the versions of it the actor may see, newest first (never empty).

    403 for a role that never reads results; 404 for a result that is not the actor's to see.
    """
    require(actor, Permission.LAB_RESULT_READ)
    result = get_or_404(session, LabResult, result_id, actor)
    versions = versions_of(session, actor, result)
    if not versions:
        raise NotFound()
    return result, versions


def _version_files_stmt(rs: RoleScope) -> Select[Attachment]:
    """The attachments of the result versions `:version_ids` (a list), in upload order."""
    version_ids = bindparam("version_ids", type_=Integer, expanding=True)
    stmt = select(Attachment).where(Attachment.lab_result_version_id.in_(version_ids))
    return rs.scope(stmt.order_by(Attachment.id), Attachment)


def attachments_of(
    session: Session, actor: Actor, version_ids: list[int]
) -> dict[int, list[Attachment]]:
    """Attachments of the given versions that the actor may see, by version id."""
    if not version_ids:
        return {}
    found: dict[int, list[Attachment]] = {}
    params = reader(actor, version_ids=version_ids)
    for row in session.scalars(scoped(_version_files_stmt, actor), params):
        assert row.lab_result_version_id is not None
        found.setdefault(row.lab_result_version_id, []).append(row)
    return found
