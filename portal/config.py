"""Settings from the environment (the README's Configuration table lists them). Production
refuses to start without its secrets."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from portal.zones import DEFAULT_ZONE, known_zones, zone_named

ENVIRONMENTS = ("development", "test", "production")


class ConfigError(RuntimeError):
    """The environment does not describe a portal that may start."""


def _instance_secret(instance: Path, name: str) -> str:
    """A secret generated once for this checkout and kept in `instance/` (development only)."""
    path = instance / name
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _flag(raw: str | None, *, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


def _checkpoint_dir(env: Mapping[str, str], instance: Path, production: bool) -> str:
    """AUDIT_CHECKPOINT_DIR; in production named explicitly and outside instance/, which sits
    beside the database and the app and is no place its admin cannot reach."""
    named = env.get("AUDIT_CHECKPOINT_DIR", "")
    if not production:
        return named or str(instance / "audit-checkpoints")
    if not named:
        raise ConfigError("AUDIT_CHECKPOINT_DIR is required when PORTAL_ENV=production")
    where, kept = Path(named).resolve(), instance.resolve()
    if where == kept or kept in where.parents:
        raise ConfigError("AUDIT_CHECKPOINT_DIR must be outside the instance folder in production")
    return named


#: The secrets production needs, each its own and long enough not to be guessed.
PRODUCTION_SECRETS = (
    "SECRET_KEY",
    "ATTACHMENT_KEY",
    "TOTP_KEY",
    "AUDIT_KEY",
    "AUDIT_CHECKPOINT_KEY",
)
MIN_SECRET_LENGTH = 32
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", ""})  # noqa: S104


def _check_production_secrets(env: Mapping[str, str]) -> None:
    """L6 (docs/security.md): refuse short or shared secrets and a PORTAL_URL that mailed
    links could not reach (a local address)."""
    from urllib.parse import urlsplit

    # A missing one is named by `secret` ("required").
    values = {name: env[name] for name in PRODUCTION_SECRETS if env.get(name)}
    for name, value in values.items():
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(f"{name} must be at least {MIN_SECRET_LENGTH} characters long")
    if len(set(values.values())) != len(values):
        raise ConfigError(f"{', '.join(PRODUCTION_SECRETS)} must each be a different secret")
    url = env.get("PORTAL_URL", "")
    host = (urlsplit(url).hostname or "").lower()
    if host in _LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127."):
        raise ConfigError("PORTAL_URL must be the portal's public address in production")


def load_settings(env: Mapping[str, str], *, instance: str) -> dict[str, Any]:
    """Flask config for the environment `env` describes."""
    portal_env = env.get("PORTAL_ENV", "development")
    if portal_env not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}")
    production = portal_env == "production"
    instance_dir = Path(instance)

    def secret(name: str, filename: str) -> str:
        value = env.get(name)
        if value:
            return value
        if production:
            raise ConfigError(f"{name} is required when PORTAL_ENV=production")
        return _instance_secret(instance_dir, filename)

    clinic_zone = env.get("PORTAL_TIMEZONE") or DEFAULT_ZONE
    if not known_zones():
        raise ConfigError("No time zone database: install the system's tzdata (or pip tzdata)")
    if zone_named(clinic_zone) is None:
        raise ConfigError(f"PORTAL_TIMEZONE names no IANA zone (Europe/Berlin): {clinic_zone}")

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'portal.db'}"
    checkpoint_key = secret("AUDIT_CHECKPOINT_KEY", "audit_checkpoint_key")
    if checkpoint_key == env.get("AUDIT_KEY"):
        raise ConfigError("AUDIT_CHECKPOINT_KEY must differ from AUDIT_KEY")
    if production:
        _check_production_secrets(env)
    tsa_url = env.get("TSA_URL", "")
    tsa_ca_file = env.get("AUDIT_TSA_CA_FILE", "")
    if production and not (tsa_url and tsa_ca_file):
        raise ConfigError(
            "TSA_URL and AUDIT_TSA_CA_FILE are required when PORTAL_ENV=production "
            "(every audit checkpoint is time-stamped)"
        )
    return {
        "PORTAL_ENV": portal_env,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret("SECRET_KEY", "secret_key"),
        "ATTACHMENT_KEY": secret("ATTACHMENT_KEY", "attachment_key"),
        # Seals each account's two-step sign-in secret (portal.services.two_factor).
        "TOTP_KEY": secret("TOTP_KEY", "totp_key"),
        # Providers and admins must use two-step sign-in (they enrol at their next sign-in):
        # on by default in production; the development demo signs in with passwords alone.
        "TWO_FACTOR_REQUIRED": _flag(env.get("PORTAL_TWO_FACTOR_REQUIRED"), default=production),
        # The audit chain's HMAC key, kept outside the database (portal.audit.keys); retired
        # keys stay listed in AUDIT_OLD_KEYS (comma-separated) so older entries still verify.
        "AUDIT_KEY": secret("AUDIT_KEY", "audit_key"),
        "AUDIT_OLD_KEYS": env.get("AUDIT_OLD_KEYS", ""),
        # Where the chain's head is checkpointed (an append-only file), outside the database;
        # production names it, away from instance/ (`_checkpoint_dir`).
        "AUDIT_CHECKPOINT_DIR": _checkpoint_dir(env, instance_dir, production),
        # Signs each checkpoint (Ed25519, portal.audit.stamps); never the chain's HMAC key.
        # The public half alone verifies (AUDIT_CHECKPOINT_PUBLIC_KEY, hex), e.g. an auditor's.
        "AUDIT_CHECKPOINT_KEY": checkpoint_key,
        "AUDIT_CHECKPOINT_PUBLIC_KEY": env.get("AUDIT_CHECKPOINT_PUBLIC_KEY", ""),
        # An RFC 3161 time-stamp authority for each checkpoint, and its CA certificate (PEM)
        # that `audit verify` checks the tokens against; both required in production.
        # L9: the shortest message retention an admin may set (days; the operator's call).
        "MESSAGE_RETENTION_MIN_DAYS": int(env.get("PORTAL_MESSAGE_RETENTION_MIN_DAYS") or 2190),
        "TSA_URL": tsa_url,
        # Whether this process's worker writes checkpoints: exactly one should (production:
        # off unless set; a second that is on finds the writer lease taken and writes none).
        "AUDIT_CHECKPOINT_WRITER": _flag(
            env.get("AUDIT_CHECKPOINT_WRITER"), default=not production
        ),
        "AUDIT_TSA_CA_FILE": tsa_ca_file,
        "DEBUG": False,
        "TESTING": portal_env == "test",
        "SESSION_COOKIE_NAME": "portal_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_DURATION": timedelta(0),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        # The cookie only carries the server-side session's secret, so it is re-signed only
        # when it changes (sign-in); the server enforces the idle and absolute timeouts against
        # the session's row (portal.services.sessions), whatever the cookie's expiry says.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
        "SESSION_ABSOLUTE_TIMEOUT": timedelta(hours=12),
        # API tokens (an app on a phone): unused for 30 days or older than 90, they end.
        "API_TOKEN_IDLE_TIMEOUT": timedelta(days=30),
        "API_TOKEN_LIFETIME": timedelta(days=90),
        "WTF_CSRF_TIME_LIMIT": None,  # the session's own timeouts bound the token
        # Attachments: per file, and per message (count and total). A request may be larger
        # than a message may carry, so a refused file comes back as a form error with what was
        # typed (the request keeps no more of a file than ATTACHMENT_MAX_BYTES, web.uploads);
        # past MAX_CONTENT_LENGTH the server stops reading (413).
        "ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
        "ATTACHMENT_MAX_FILES": 5,
        "ATTACHMENT_MAX_TOTAL_BYTES": 20 * 1024 * 1024,
        "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
        # Failed sign-ins allowed per email address and per client address within the window,
        # before a pause of 1, 2, 4, 8 minutes ... up to LOGIN_LOCKOUT (portal.services.throttle).
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
        "LOGIN_WINDOW": timedelta(minutes=15),
        "LOGIN_LOCKOUT": timedelta(minutes=15),
        # How many proxies in front of the portal set X-Forwarded-For (and -Proto, -Host): the
        # client address then is the real one, in the audit and for the sign-in throttle.
        "PROXY_HOPS": int(env.get("PORTAL_PROXY_HOPS", "0")),
        # The clinic's time zone: its days and opening hours (slots, the cancel cut-off), and
        # the times shown to anyone who has not chosen their own zone (portal.zones).
        "PORTAL_TIMEZONE": clinic_zone,
        # argon2id: library defaults in production; tests pass cheap parameters.
        "ARGON2_PARAMS": {},
        # The portal's address as people reach it: links in mail are built from it, never from
        # the request's Host header.
        "PORTAL_URL": env.get("PORTAL_URL", "http://127.0.0.1:5000"),
        # Mail: an SMTP server (smtp://user:password@host:587?tls=starttls, smtps://...:465),
        # or, without one, files under MAIL_DIR (default instance/mail).
        "MAIL_URL": env.get("MAIL_URL") or None,
        "MAIL_DIR": env.get("MAIL_DIR") or None,
        "MAIL_FROM": env.get("MAIL_FROM", "Patient portal <no-reply@localhost>"),
        # Real-time events (/ws): how often a process looks for new events on SQLite (PostgreSQL
        # is woken by NOTIFY and looks this often only as a fallback), how often open sockets'
        # sessions are re-checked, and how many missed events a reconnect replays before it is
        # told to reload instead.
        "REALTIME_POLL_INTERVAL": float(env.get("PORTAL_REALTIME_POLL", "0.1")),
        "REALTIME_FALLBACK_POLL": 2.0,
        "REALTIME_RECHECK_INTERVAL": float(env.get("PORTAL_REALTIME_RECHECK", "2")),
        "REALTIME_REPLAY_MAX": 100,
        "SOCK_SERVER_OPTIONS": {"ping_interval": 25, "max_message_size": 1024},
        # Off only for benchmarks measuring what auditing reads costs; never in production.
        "AUDIT_ENABLED": production or _flag(env.get("PORTAL_AUDIT_ENABLED"), default=True),
    }
