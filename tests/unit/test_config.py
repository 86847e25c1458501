"""Configuration from the environment (CONTRACT §2)."""

from __future__ import annotations

import pytest

from portal.config import ConfigError, load_settings


def test_production_refuses_to_start_without_its_secrets(tmp_path) -> None:
    complete = {"PORTAL_ENV": "production", "SECRET_KEY": "s", "ATTACHMENT_KEY": "k"}
    complete["AUDIT_KEY"] = "a"
    for name in ("SECRET_KEY", "ATTACHMENT_KEY", "AUDIT_KEY"):
        without = {k: v for k, v in complete.items() if k != name}
        with pytest.raises(ConfigError, match=name):
            load_settings(without, instance=str(tmp_path))


def test_production_uses_secure_cookies(tmp_path) -> None:
    settings = load_settings(
        {"PORTAL_ENV": "production", "SECRET_KEY": "s", "ATTACHMENT_KEY": "k", "AUDIT_KEY": "a"},
        instance=str(tmp_path),
    )
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["DEBUG"] is False


def test_development_generates_secrets_once_and_keeps_them(tmp_path) -> None:
    first = load_settings({}, instance=str(tmp_path))
    second = load_settings({}, instance=str(tmp_path))
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ATTACHMENT_KEY"] != first["SECRET_KEY"]
    assert first["AUDIT_KEY"] == second["AUDIT_KEY"] != first["SECRET_KEY"]
    assert first["AUDIT_CHECKPOINT_DIR"] == str(tmp_path / "audit-checkpoints")
    assert first["DATABASE_URL"] == f"sqlite:///{tmp_path / 'portal.db'}"
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


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
