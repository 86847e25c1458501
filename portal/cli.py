"""`flask --app wsgi ...` commands: db, demo, audit, labs, messages, users."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from portal.extensions import db
from portal.transactions import unit_of_work

ROOT = Path(__file__).resolve().parent.parent

db_cli = AppGroup("db", help="Database migrations.")
demo_cli = AppGroup("demo", help="Demo data (never in production).")
audit_cli = AppGroup("audit", help="The audit log.")
labs_cli = AppGroup("labs", help="Lab result jobs.")
users_cli = AppGroup("users", help="Staff accounts (the first admin is made here).")
messages_cli = AppGroup("messages", help="Secure message jobs.")
jobs_cli = AppGroup("jobs", help="Background jobs (`worker` runs them on their schedules).")


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(app: Flask, revision: str = "head") -> None:
    with app.app_context():
        command.upgrade(alembic_config(app.config["DATABASE_URL"]), revision)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to REVISION (default: head)."""
    command.upgrade(alembic_config(current_app.config["DATABASE_URL"]), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert the migrations down to REVISION (e.g. base)."""
    command.downgrade(alembic_config(current_app.config["DATABASE_URL"]), revision)


@demo_cli.command("seed")
@click.option("--patients", default=0, help="Extra generated patients, for benchmarks.")
@click.option("--labs-per-patient", default=20, help="Results per generated patient.")
@click.option("--if-empty", is_flag=True, help="Do nothing when accounts already exist.")
def demo_seed(patients: int, labs_per_patient: int, if_empty: bool) -> None:
    """Create the demo accounts and realistic data; never in production."""
    from portal import demo

    if current_app.config["PORTAL_ENV"] == "production":
        raise click.ClickException("demo data is never seeded in production")
    session = db.session
    if if_empty and demo.has_accounts(session):
        click.echo("Demo data: accounts exist already, nothing to do.")
        return
    demo.seed(session)
    if patients:
        made = demo.seed_bulk(session, patients=patients, labs_per_patient=labs_per_patient)
        click.echo(f"Generated {made} patients with {labs_per_patient} results each.")
    click.echo("Demo data ready. Password for every demo account: " + demo.PASSWORD)


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check the audit log's keyed chain against the checkpoints of its head; exit 1 naming
    the first bad (or missing) entry."""
    from portal.audit import checkpoints, stamps
    from portal.audit.chain import unsealed, verify

    try:
        taken = checkpoints.read(checkpoints.directory())
    except checkpoints.CheckpointFileError as exc:
        click.echo(f"Audit checkpoints unreadable: {exc}.", err=True)
        sys.exit(1)
    untrusted = checkpoints.check(taken, stamps.configured(current_app.config))
    if untrusted is not None:
        click.echo(f"Audit checkpoints untrusted: {untrusted}.", err=True)
        sys.exit(1)
    count, problem = verify(db.session, checkpoints=taken)
    waiting = unsealed(db.session)
    if problem is None:
        last = f"; newest checkpoint at {taken[-1].position}" if taken else "; no checkpoint yet"
        tail = f"; {waiting} newer entries not sealed yet" if waiting else ""
        click.echo(f"Audit log intact: {count} entries verified{last}{tail}.")
        return
    click.echo(f"Audit log BROKEN at entry {problem.entry_id}: {problem.reason}.", err=True)
    sys.exit(1)


@audit_cli.command("seal")
def audit_seal() -> None:
    """Seal every entry written since the last seal into the chain (the worker does it every
    second; this is for cron and for checking a log before `verify`)."""
    from portal.audit.chain import seal

    total = 0
    while True:
        with unit_of_work() as session:
            done = seal(session, batch=5000)
        total += done
        if not done:
            break
    click.echo(f"Audit log: {total} entries sealed.")


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Append the audit chain's head to the checkpoint file (the worker does it every minute;
    this is for cron)."""
    from portal.audit import checkpoints, stamps

    try:
        with unit_of_work() as session:
            written = checkpoints.write(session, checkpoints.directory())
    except stamps.StampError as exc:
        click.echo(f"Audit checkpoint not written: {exc}.", err=True)
        sys.exit(1)
    if written is None:
        click.echo("Audit checkpoint unchanged (no new entries).")
    else:
        click.echo(f"Audit checkpoint: {written.position} entries, newest {written.entry_id}.")


@labs_cli.command("release-due")
def labs_release_due() -> None:
    """Release held results whose automatic release time has come (run from a scheduler)."""
    from portal.services import labs

    with unit_of_work() as session:
        count = labs.release_due(session)
    click.echo(f"Released {count} result versions.")


@jobs_cli.command("run-once")
def jobs_run_once() -> None:
    """Run every background job once (cron-style deployments, tests)."""
    from portal import jobs

    for name, done in jobs.run_once().items():
        click.echo(f"{name}: {'another worker is running it' if done is None else done}")


@click.command("worker")
@with_appcontext
def worker() -> None:
    """Run the background jobs, each on its schedule, until stopped (Procfile `worker:`)."""
    from portal import jobs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    click.echo("Background jobs: " + ", ".join(f"{j.name} every {j.every}" for j in jobs.JOBS))
    jobs.run_forever()


@messages_cli.command("purge")
def messages_purge() -> None:
    """Delete threads older than the clinic's retention period (run daily from a scheduler)."""
    from portal.services import retention

    with unit_of_work() as session:
        count = retention.purge_messages(session)
    click.echo(f"Purged {count} conversations past the retention period.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["admin", "provider"]), required=True)
@click.option("--name", "display_name", required=True, help="Name shown in the portal.")
@click.option("--specialty", default=None)
def users_create(email: str, role: str, display_name: str, specialty: str | None) -> None:
    """Create a provider or admin account and print its one-time invitation link."""
    from flask import url_for

    from portal.models import Role
    from portal.services import accounts

    try:
        with unit_of_work() as session:
            _user, token = accounts.create_staff(
                session,
                None,
                email=email,
                role=Role(role),
                display_name=display_name,
                specialty=specialty,
            )
    except accounts.AccountError as exc:
        raise click.ClickException(exc.message) from exc
    with current_app.test_request_context():
        path = url_for("auth.invitation", token=token)
    click.echo(f"Created {role} {email}. Send them this link (valid 7 days): {path}")


def register(app: Flask) -> None:
    for group in (db_cli, demo_cli, audit_cli, labs_cli, users_cli, messages_cli, jobs_cli):
        app.cli.add_command(group)
    app.cli.add_command(worker)
