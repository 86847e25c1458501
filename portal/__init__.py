"""The patient portal: `create_app()` builds it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import load_settings


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal. Tests pass `overrides`; everything else comes from the environment."""
    root = Path(__file__).resolve().parent.parent
    app = Flask(
        __name__,
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
        instance_path=str(root / "instance"),
    )
    app.config.from_mapping(load_settings(os.environ, instance=app.instance_path))
    app.config.update(overrides or {})
    _configure_logging(app)
    from portal.web.uploads import PortalRequest

    app.request_class = PortalRequest  # a file past its limit is a form error, not a 413
    if app.config["PROXY_HOPS"]:
        # Behind N trusted proxies the client's address (audit, sign-in throttle) and scheme
        # come from their X-Forwarded-* headers; without this, from whoever connected.
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from portal.web import ids, unusable_input

    ids.init_app(app)  # before any blueprint adds its `<int:...>` routes
    unusable_input.init_app(app)  # first of the request hooks: NUL bytes, JSON too deep (L5)

    from portal import api, cli, errors, health, lab_names, realtime, system_words
    from portal.admin import bp as admin_bp
    from portal.auth import two_factor_views  # noqa: F401  (its routes are on auth_bp)
    from portal.auth.views import bp as auth_bp
    from portal.extensions import csrf, db, login_manager
    from portal.patient import bp as patient_bp
    from portal.staff import bp as staff_bp
    from portal.web import audit_reads, htmx, identity, language, templating

    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    identity.init_app(app)
    audit_reads.init_app(app)
    htmx.init_app(app)
    language.init_app(app)
    # The filters first: templating compiles the shared macros, which use them.
    lab_names.init_app(app)
    system_words.init_app(app)
    templating.init_app(app)
    for bp in (auth_bp, patient_bp, staff_bp, admin_bp, health.bp):
        app.register_blueprint(bp)
    api.init_app(app)
    realtime.init_app(app)
    errors.register(app)
    cli.register(app)
    return app


def _configure_logging(app: Flask) -> None:
    """Log lines carry the request id, never names, MRNs or values (see portal.audit)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    # werkzeug's access log prints full URLs; those can carry search terms such as names.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
