"""Bearer tokens: `POST /auth/token` with email and password, `DELETE /auth/token` to revoke.

A token is a server-side session of the API kind: the same table, the same validity rules
(revoked by sign-out-everywhere, a password change or deactivation), listed among the person's
signed-in devices as an app, and refused what `access.METHOD_PERMISSIONS` keeps from tokens.
"""

from __future__ import annotations

from flask import Response, request
from pydantic import EmailStr, Field
from sqlalchemy.orm import Session

from portal.access import Actor
from portal.api import bp
from portal.api.errors import problem
from portal.api.operations import operation
from portal.api.schemas import Instant, Schema, example_of, with_example
from portal.db import utcnow
from portal.models import AuthMethod
from portal.services import accounts, sessions, two_factor
from portal.web.identity import limits, sign_in_limits


class TokenRequest(Schema):
    model_config = with_example(
        {"email": "sam.example@example.org", "password": "my own passphrase", "client": "My app"}
    )

    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=1, max_length=256)
    #: What the app calls itself on the person's "Signed-in devices" list.
    client: str | None = Field(default=None, max_length=120)
    #: For an account with two-step sign-in: the code its authenticator app shows now, or a
    #: recovery code.
    code: str | None = Field(default=None, min_length=1, max_length=24)


class TokenUser(Schema):
    model_config = with_example({"id": 4, "role": "patient", "email": "sam.example@example.org"})

    id: int
    role: str
    email: str


class TokenOut(Schema):
    model_config = with_example(
        {
            # Shaped like a real one (43 URL-safe characters); it opens nothing.
            "token": "EXAMPLE-ONLY_x9Qm2vT7LrB4nK8sW1cZ5dH3fJ6gP0",
            "expiresAt": "2026-12-30T16:10:00Z",
            "user": example_of(TokenUser),
        }
    )

    token: str
    expires_at: Instant
    user: TokenUser


@operation(
    bp,
    "POST",
    "/auth/token",
    summary="Get a bearer token",
    tag="Authentication",
    body=TokenRequest,
    response=TokenOut,
    status=201,
    public=True,
    errors=(401, 403, 429),
)
def issue_token(s: Session, _actor: Actor | None, *, body: TokenRequest) -> Response | TokenOut:
    """The same sign-in as the page: a wrong email or password gives one generic 401, and
    failures count toward the same pauses (a refusal commits too: it is counted and recorded);
    while paused, 429 with `Retry-After`. An account with two-step sign-in also sends `code`
    (without it: 401 saying so, once the password was right); a provider or admin who must set
    it up first gets 403. The token is shown once; only its hash is kept."""
    throttle = sign_in_limits()
    attempt = accounts.authenticate(
        s,
        email=body.email,
        password=body.password,
        limits=throttle,
        client_address=request.remote_addr,
    )
    if attempt.needs_code and attempt.user is not None:
        if body.code is None:
            return problem(401, "This account uses two-step sign-in: send its code as `code`.")
        attempt = accounts.authenticate_code(
            s,
            user_id=attempt.user.id,
            code=body.code,
            limits=throttle,
            client_address=request.remote_addr,
        )
    if attempt.user is not None and two_factor.must_enrol(attempt.user):
        return problem(403, "Set up two-step sign-in in the portal first.")
    if attempt.user is None:
        if attempt.retry_after is not None:
            paused = problem(429, attempt.refusal)
            paused.headers["Retry-After"] = str(attempt.retry_after)
            return paused
        return problem(401, attempt.refusal)
    client = body.client or sessions.describe_client(request.user_agent.string or "")
    token = sessions.start(s, attempt.user, method=AuthMethod.TOKEN, client=client)
    _idle, lifetime = limits(AuthMethod.TOKEN)
    user = attempt.user
    return TokenOut(
        token=token,
        expires_at=utcnow() + lifetime,
        user=TokenUser(id=user.id, role=str(user.role), email=user.email),
    )


@operation(
    bp, "DELETE", "/auth/token", summary="Revoke the token in use", tag="Authentication", status=204
)
def revoke_token(session: Session, actor: Actor) -> None:
    """Ends the token this request was sent with (or, from a browser, its session)."""
    sessions.sign_out(session, actor)
