"""Configuration from the environment (CONTRACT §2)."""

from __future__ import annotations

import pytest

from portal.config import ConfigError, load_settings


def test_production_refuses_to_start_without_its_secrets(tmp_path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"PORTAL_ENV": "production", "ATTACHMENT_KEY": "k"}, instance=str(tmp_path))
    with pytest.raises(ConfigError, match="ATTACHMENT_KEY"):
        load_settings({"PORTAL_ENV": "production", "SECRET_KEY": "s"}, instance=str(tmp_path))


def test_production_uses_secure_cookies(tmp_path) -> None:
    settings = load_settings(
        {"PORTAL_ENV": "production", "SECRET_KEY": "s", "ATTACHMENT_KEY": "k"},
        instance=str(tmp_path),
    )
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["DEBUG"] is False


def test_development_generates_secrets_once_and_keeps_them(tmp_path) -> None:
    first = load_settings({}, instance=str(tmp_path))
    second = load_settings({}, instance=str(tmp_path))
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ATTACHMENT_KEY"] != first["SECRET_KEY"]
    assert first["DATABASE_URL"] == f"sqlite:///{tmp_path / 'portal.db'}"
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_clinics_time_zone_comes_from_the_environment(tmp_path) -> None:
    assert load_settings({}, instance=str(tmp_path))["PORTAL_TIMEZONE"] == "UTC"
    berlin = load_settings({"PORTAL_TIMEZONE": "Europe/Berlin"}, instance=str(tmp_path))
    assert berlin["PORTAL_TIMEZONE"] == "Europe/Berlin"
    with pytest.raises(ConfigError, match="PORTAL_TIMEZONE"):
        load_settings({"PORTAL_TIMEZONE": "Europe/Atlantis"}, instance=str(tmp_path))


def test_an_unknown_environment_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError):
        load_settings({"PORTAL_ENV": "staging"}, instance=str(tmp_path))


def test_demo_seed_refuses_in_production(app) -> None:
    runner = app.test_cli_runner()
    app.config["PORTAL_ENV"] = "production"
    try:
        result = runner.invoke(args=["demo", "seed"])
    finally:
        app.config["PORTAL_ENV"] = "test"
    assert result.exit_code != 0
    assert "never seeded in production" in result.output


def test_the_first_admin_is_created_from_the_command_line(app, connection) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "Ops@Example.org", "--role", "admin", "--name", "Ops"]
    )
    assert result.exit_code == 0, result.output
    assert "/invitation/" in result.output
    again = app.test_cli_runner().invoke(
        args=["users", "create", "--email", "ops@example.org", "--role", "admin", "--name", "Ops"]
    )
    assert again.exit_code != 0
    assert "already exists" in again.output
