"""The migrations build the schema the models describe, and come down again, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from portal.cli import alembic_config
from portal.db import Base, make_engine
from tests.support import backend, new_database


@pytest.fixture
def empty_url(tmp_path) -> str:
    return new_database(tmp_path, "migrations")


def test_upgrade_to_head_and_downgrade_to_base(empty_url: str) -> None:
    cfg = alembic_config(empty_url)
    command.upgrade(cfg, "head")
    engine = make_engine(empty_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()

    command.downgrade(cfg, "base")
    engine = make_engine(empty_url)
    assert inspect(engine).get_table_names() == ["alembic_version"]
    engine.dispose()

    command.upgrade(cfg, "head")  # and up again: the downgrade left nothing behind


def test_models_and_migrations_do_not_drift(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "head")
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ on {backend()}: {diff}"


def test_drift_check_notices_a_column_missing_from_the_migrations(empty_url: str) -> None:
    # The check above must be able to fail: a column the migrations lack shows up as a diff.
    from sqlalchemy import Column, String

    command.upgrade(alembic_config(empty_url), "head")
    table = Base.metadata.tables["clinic_setting"]
    extra = Column("not_migrated", String(10))
    table.append_column(extra)
    try:
        engine = make_engine(empty_url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        engine.dispose()
    finally:
        table._columns.remove(extra)
    assert any(d[0] == "add_column" and d[3].name == "not_migrated" for d in diff)


def test_0017_leaves_each_patients_language_as_it_was_and_lets_new_ones_choose_none(
    empty_url: str,
) -> None:
    # Arrange: a patient from before 0017, whose 'en' may be the old default or a choice.
    cfg = alembic_config(empty_url)
    command.upgrade(cfg, "0015")
    engine = make_engine(empty_url)
    insert = text(
        "INSERT INTO patient_profile (medical_record_number, display_name, preferred_language,"
        " release_preference, is_active, created_at, updated_at)"
        " VALUES (:mrn, 'A Patient', :language, 'as_soon_as_allowed', :yes, :at, :at)"
    )
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    languages = text("SELECT medical_record_number, preferred_language FROM patient_profile")
    with engine.begin() as conn:
        conn.execute(insert, {"mrn": "MRN-1", "language": "en", "yes": True, "at": at})
    # Act: up (a new patient with no choice), then down again.
    command.upgrade(cfg, "0017")
    with engine.begin() as conn:
        conn.execute(insert, {"mrn": "MRN-2", "language": None, "yes": True, "at": at})
        up = sorted(tuple(row) for row in conn.execute(languages))
    command.downgrade(cfg, "0015")
    with engine.connect() as conn:
        down = sorted(tuple(row) for row in conn.execute(languages))
    engine.dispose()
    # Assert
    assert up == [("MRN-1", "en"), ("MRN-2", None)]
    assert down == [("MRN-1", "en"), ("MRN-2", "en")]
