"""Read auditing can be switched off for a benchmark, never in production."""

from __future__ import annotations

from portal.config import load_settings


def test_benchmarks_can_switch_read_auditing_off(tmp_path) -> None:
    settings = load_settings({"PORTAL_AUDIT_ENABLED": "0"}, instance=str(tmp_path))
    assert settings["AUDIT_ENABLED"] is False


def test_read_auditing_is_on_by_default(tmp_path) -> None:
    assert load_settings({}, instance=str(tmp_path))["AUDIT_ENABLED"] is True


def test_production_ignores_the_switch(tmp_path) -> None:
    env = {
        "PORTAL_ENV": "production",
        "PORTAL_AUDIT_ENABLED": "false",
        "SECRET_KEY": "s" * 40,
        "ATTACHMENT_KEY": "a" * 40,
        "TOTP_KEY": "t" * 40,
        "AUDIT_KEY": "k" * 40,
        "AUDIT_CHECKPOINT_KEY": "c" * 40,
        "AUDIT_CHECKPOINT_DIR": "/var/lib/portal-checkpoints",
        "TSA_URL": "https://tsa.example/",
        "PORTAL_URL": "https://portal.example.org",
        "AUDIT_TSA_CA_FILE": "/etc/portal/tsa-ca.pem",
    }
    assert load_settings(env, instance=str(tmp_path))["AUDIT_ENABLED"] is True
