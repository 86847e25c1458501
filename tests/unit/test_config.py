"""Configuration from the environment: the variables of the README's Configuration table."""

from __future__ import annotations

import pytest

from portal.config import ConfigError, load_settings

PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "ATTACHMENT_KEY": "k" * 40,
    "TOTP_KEY": "t" * 40,
    "AUDIT_KEY": "a" * 40,
    "AUDIT_CHECKPOINT_KEY": "c" * 40,
    "PORTAL_URL": "https://portal.example.org",
    "AUDIT_CHECKPOINT_DIR": "/var/lib/portal-checkpoints",
    "TSA_URL": "https://tsa.example/",
    "AUDIT_TSA_CA_FILE": "/etc/portal/tsa-ca.pem",
}


def test_production_refuses_to_start_without_its_secrets(tmp_path) -> None:
    for name in (
        "SECRET_KEY",
        "ATTACHMENT_KEY",
        "TOTP_KEY",
        "AUDIT_KEY",
        "AUDIT_CHECKPOINT_KEY",
        "AUDIT_CHECKPOINT_DIR",
        "TSA_URL",
        "AUDIT_TSA_CA_FILE",
    ):
        without = {k: v for k, v in PRODUCTION.items() if k != name}
        with pytest.raises(ConfigError, match=name):
            load_settings(without, instance=str(tmp_path))


def test_production_uses_secure_cookies_and_requires_two_step_sign_in_of_staff(tmp_path) -> None:
    settings = load_settings(PRODUCTION, instance=str(tmp_path))
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["DEBUG"] is False
    assert settings["TWO_FACTOR_REQUIRED"] is True
    off = load_settings({**PRODUCTION, "PORTAL_TWO_FACTOR_REQUIRED": "off"}, instance=str(tmp_path))
    assert off["TWO_FACTOR_REQUIRED"] is False
    # The development demo signs in with the contract's passwords alone, unless turned on
    assert load_settings({}, instance=str(tmp_path))["TWO_FACTOR_REQUIRED"] is False
    on = load_settings({"PORTAL_TWO_FACTOR_REQUIRED": "1"}, instance=str(tmp_path))
    assert on["TWO_FACTOR_REQUIRED"] is True


def test_development_generates_secrets_once_and_keeps_them(tmp_path) -> None:
    first = load_settings({}, instance=str(tmp_path))
    second = load_settings({}, instance=str(tmp_path))
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ATTACHMENT_KEY"] != first["SECRET_KEY"]
    assert first["AUDIT_KEY"] == second["AUDIT_KEY"] != first["SECRET_KEY"]
    assert first["AUDIT_CHECKPOINT_DIR"] == str(tmp_path / "audit-checkpoints")
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


def test_production_refuses_checkpoints_inside_instance_or_keyed_like_the_chain(tmp_path) -> None:
    # Issue 21, point 4: the checkpoints' sink is named, and not beside the database
    for inside in (str(tmp_path), str(tmp_path / "audit-checkpoints")):
        with pytest.raises(ConfigError, match="outside the instance folder"):
            load_settings({**PRODUCTION, "AUDIT_CHECKPOINT_DIR": inside}, instance=str(tmp_path))
    with pytest.raises(ConfigError, match="must differ from AUDIT_KEY"):
        load_settings({**PRODUCTION, "AUDIT_CHECKPOINT_KEY": "a" * 40}, instance=str(tmp_path))
    settings = load_settings(PRODUCTION, instance=str(tmp_path))
    assert settings["AUDIT_CHECKPOINT_DIR"] == "/var/lib/portal-checkpoints"


def test_production_refuses_short_or_shared_secrets_and_a_local_portal_url(tmp_path) -> None:
    # L6 (docs/security.md)
    with pytest.raises(ConfigError, match="TOTP_KEY must be at least 32"):
        load_settings({**PRODUCTION, "TOTP_KEY": "x"}, instance=str(tmp_path))
    with pytest.raises(ConfigError, match="must each be a different secret"):
        load_settings({**PRODUCTION, "TOTP_KEY": "s" * 40}, instance=str(tmp_path))
    for url in ("", "http://127.0.0.1:5000", "http://localhost:8000", "https://app.localhost"):
        with pytest.raises(ConfigError, match="PORTAL_URL must be the portal's public address"):
            load_settings({**PRODUCTION, "PORTAL_URL": url}, instance=str(tmp_path))
