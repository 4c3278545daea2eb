"""API tokens: long random bearer secrets, kept only as a keyed hash, scoped by the role.

A token is 256 random bits, so no one can guess it or search for it offline: a slow password
hash (argon2) would only cost every request time. HMAC-SHA256 under a key derived from the
secret key, like the other tokens in clarion.tokens, lets the database find a token by its
hash through a unique index, and a copy of the database alone cannot check a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from clarion import audit, editors, throttle
from clarion.config import get_settings
from clarion.db import session_scope, utcnow
from clarion.errors import Forbidden, NotFound, RateLimited, ValidationError
from clarion.i18n import admin_gettext
from clarion.models import ApiToken, Editor, Role

PREFIX = "clarion_"
# What each scope lets a program do, as the role permissions it needs at the least.
SCOPES: dict[str, str] = {
    "read": "view",  # look at subscribers, lists, alerts, petitions, progress
    "write": "compose",  # create and change drafts, petitions, subscribers, lists, tags
    "send": "send",  # schedule, send, pause, resume, cancel
    "import": "manage_subscribers",  # add readers as confirmed, with their consent statement
}
MAX_DAYS = 3650
LAST_USE_GRANULARITY = timedelta(minutes=1)


def _key() -> bytes:
    secret = get_settings().secret_key.encode()
    return hmac.digest(secret, b"clarion.api-token", "sha256")


def token_hash(token: str) -> str:
    """The keyed hash a token is stored and found by."""
    return hmac.digest(_key(), token.encode(), hashlib.sha256).hex()


def _clean_scopes(editor: Editor, scopes: list[str] | tuple[str, ...]) -> list[str]:
    chosen = sorted(set(scopes))
    if not chosen:
        problem = admin_gettext("Choose at least one of: %(scopes)s.", scopes=", ".join(SCOPES))
        raise ValidationError({"scope": problem})
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise ValidationError(
            {
                "scope": admin_gettext(
                    "Unknown scope %(scope)s; choose from %(scopes)s.",
                    scope=repr(unknown[0]),
                    scopes=", ".join(SCOPES),
                )
            }
        )
    beyond = [s for s in chosen if not editors.can(editor, SCOPES[s])]
    if beyond:
        raise ValidationError(
            {
                "scope": admin_gettext(
                    "Your role (%(role)s) does not allow the scope %(scope)s.",
                    role=admin_gettext(editor.role.value),
                    scope=beyond[0],
                )
            }
        )
    return chosen


def create_token(
    session: Session,
    editor: Editor,
    scopes: list[str] | tuple[str, ...],
    *,
    name: str = "",
    expires_days: int | None = None,
    ip: str | None = None,
) -> tuple[ApiToken, str]:
    """A new token for `editor`, within what their role allows; the secret is returned once."""
    errors: dict[str, str] = {}
    if len(name.strip()) > 100:
        errors["name"] = admin_gettext("Keep the name under 100 characters.")
    if expires_days is not None and not 1 <= expires_days <= MAX_DAYS:
        errors["expires"] = admin_gettext("Choose 1 to %(days)s days, or no expiry.", days=MAX_DAYS)
    try:
        chosen = _clean_scopes(editor, scopes)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        editor_id=editor.id,
        name=name.strip(),
        token_hash=token_hash(secret),
        prefix=secret[: len(PREFIX) + 6],
        scopes=chosen,
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(token)
    session.flush()
    audit.record(session, editor, "api_token.create", f"api_token:{token.id}", ip, scopes=chosen)
    return token, secret


def tokens_of(session: Session, editor: Editor | None) -> list[ApiToken]:
    """An editor's tokens (everyone's when None), newest first, revoked ones included."""
    query = select(ApiToken).order_by(ApiToken.id.desc())
    if editor is not None:
        query = query.where(ApiToken.editor_id == editor.id)
    return list(session.scalars(query))


def revoke(
    session: Session, actor: Editor | None, token_id: int, ip: str | None = None
) -> ApiToken:
    """Switch a token off for good: its editor may, owners may (and the command line)."""
    token = session.get(ApiToken, token_id)
    mine = actor is None or (token is not None and token.editor_id == actor.id)
    if token is None or not (mine or editors.can(actor, "manage_editors")):
        raise NotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        editors.standing_changed(session)  # refused at once by every process
        audit.record(session, actor, "api_token.revoke", f"api_token:{token.id}", ip)
    return token


@dataclass(frozen=True)
class Token:
    """What a request needs of its token: which one, and what it may do."""

    id: int
    scopes: list[str]


@dataclass(frozen=True)
class Actor:
    """What the checks and the audit log need of the token's editor, read with the token."""

    id: int
    email: str
    role: Role
    is_active: bool


@dataclass
class TokenUse:
    """A token that proved itself on a request, and the editor it acts for."""

    token: Token
    actor: Actor
    session: Session
    _editor: Editor | None = None

    @property
    def editor(self) -> Editor:
        """The editor as the domain functions take one (loaded on first use: most requests
        only check the role and write the audit log, which `actor` serves)."""
        if self._editor is None:
            self._editor = self.session.get_one(Editor, self.actor.id)
        return self._editor

    def require(self, scope: str, permission: str | None = None) -> None:
        """Forbidden unless the token has `scope` and the editor's role (today) allows it."""
        if scope not in self.token.scopes:
            raise Forbidden(f"This token does not have the {scope} scope.")
        editors.require(self.actor, SCOPES[scope])
        if permission:
            editors.require(self.actor, permission)

    def audit(self, session: Session, action: str, target: str, ip: str | None, **detail) -> None:
        """Record a use of the write or send scope, with the token that made it."""
        audit.record(session, self.actor, action, target, ip, token=self.token.id, **detail)


# Built once: constructing the select (and its cache key) cost every request ~0.2 ms. Columns,
# not the two ORM rows: ~0.1 ms less a request (bench/README.md, API, fourth pass).
_T, _E = ApiToken.__table__.c, Editor.__table__.c
_TOKEN = (_T.id, _T.scopes, _T.expires_at, _T.revoked_at, _T.last_used_at)
_BY_HASH = (
    select(*_TOKEN, _E.id, _E.email, _E.role, _E.is_active)
    .join_from(ApiToken.__table__, Editor.__table__, _E.id == _T.editor_id)
    .where(_T.token_hash == bindparam("token_hash"))
)
_NOTE_USE = update(ApiToken.__table__).where(_T.id == bindparam("token_id"))


@dataclass
class _Known:
    """A token found good, kept by this process while everyone's standing is unchanged."""

    token: Token
    actor: Actor
    expires_at: datetime | None
    last_used_at: datetime | None
    standing: str
    read_at: float


# By token hash. Saves a read of the token and its editor on almost every request (one of
# a page's three statements; bench/README.md, API). Revoking, a role lowered and an account
# switched off change the standing stamp, so every process reads the token again at once;
# KNOWN_SECONDS bounds what a change made behind Clarion's back (SQL by hand) can outlive.
_KNOWN: dict[str, _Known] = {}
KNOWN_MAX = 10_000
KNOWN_SECONDS = 60.0


def _look_up(session: Session, digest: str, standing: str) -> _Known | None:
    # One statement by the unique index on the hash, the editor joined in.
    found = session.execute(_BY_HASH, {"token_hash": digest}).first()
    if found is None:
        return None
    token_id, scopes, expires_at, revoked_at, last_used_at, *editor = found
    actor = Actor(*editor)
    if revoked_at is not None or not actor.is_active:
        return None
    if len(_KNOWN) >= KNOWN_MAX:
        _KNOWN.clear()
    known = _KNOWN[digest] = _Known(
        Token(token_id, scopes), actor, expires_at, last_used_at, standing, time.monotonic()
    )
    return known


def authenticate(
    session: Session, secret: str, now: datetime | None = None, *, reading: bool = False
) -> TokenUse | None:
    """The token and editor behind a bearer secret, or None when unknown, expired or revoked.

    TooManyRequests when the token has made too many requests lately. `reading`: the session
    only reads (a GET), so the last use is written in a short transaction of its own.
    """
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    digest = token_hash(secret)
    limit = get_settings().api_rate_limit
    known, counted, standing = _recall(digest, limit)
    if known is None:
        _KNOWN.pop(digest, None)
        # The stamp was read before the token: a token read after a change committed is
        # never kept under the stamp from before it.
        known = _look_up(session, digest, standing)
        if known is None:
            return None
    now = now or utcnow()
    if known.expires_at is not None and known.expires_at <= now:
        return None
    token_id = known.token.id
    if counted is None:
        counted = throttle.hit(limit, "api-token", str(token_id))
    if not counted:
        raise TooManyRequests(throttle.wait_seconds(limit, "api-token", str(token_id)))
    # Written at most once a minute (by each process): a busy token should not turn every
    # read into a write.
    if known.last_used_at is None or now - known.last_used_at >= LAST_USE_GRANULARITY:
        if reading:  # a reading session never takes SQLite's write lock
            _note_use(token_id, now)
        else:
            session.execute(_NOTE_USE, {"token_id": token_id, "last_used_at": now})
        known.last_used_at = now
    return TokenUse(known.token, known.actor, session)


def _recall(digest: str, limit: str) -> tuple[_Known | None, bool | None, str]:
    """The token this process kept, if everyone's standing is unchanged; whether the request
    is within the token's rate limit (None: not counted yet); the standing stamp now."""
    known = _KNOWN.get(digest)
    if known is None or time.monotonic() - known.read_at > KNOWN_SECONDS:
        return None, None, editors.standing()
    # Per token: a runaway script slows down, other tokens keep their budget. The stamp
    # comes in the same round trip.
    counted, stamp = throttle.hit_reading(
        limit, ("api-token", str(known.token.id)), editors.STANDING_KEY
    )
    standing = stamp.decode() if stamp is not None else editors.standing()
    return (known if standing == known.standing else None), counted, standing


class TooManyRequests(RateLimited):
    """A token over its rate limit, and how many seconds until it may ask again."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__("This token made too many requests; slow down and try again.")


def _note_use(token_id: int, now: datetime) -> None:
    with session_scope() as session:
        session.execute(_NOTE_USE, {"token_id": token_id, "last_used_at": now})
