"""Editor accounts: argon2 passwords, roles, throttled guessing, optional TOTP (sealed)."""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from datetime import timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from clarion import audit, i18n, redisconn, throttle
from clarion.addresses import normalise_email
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.errors import Forbidden, NotFound, ValidationError
from clarion.models import Editor, Role

MAX_FAILED_LOGINS = throttle.GUESSES_PER_ADDRESS
LOCKOUT = timedelta(seconds=throttle.GUESS_WINDOW_SECONDS)
MIN_PASSWORD = 12
TOO_MANY = i18n.NA_("Too many wrong passwords from here: wait 15 minutes, then try again.")
_hasher = PasswordHasher()
# Verified against when the address is unknown, so both paths take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

# What each role may do; checked by the web layer and the CLI alike.
PERMISSIONS: dict[str, set[Role]] = {
    "view": {Role.OWNER, Role.EDITOR, Role.VIEWER},
    "compose": {Role.OWNER, Role.EDITOR},
    "send": {Role.OWNER, Role.EDITOR},
    "manage_subscribers": {Role.OWNER, Role.EDITOR},
    "export": {Role.OWNER},
    "manage_editors": {Role.OWNER},
    "manage_settings": {Role.OWNER},
    "lift_suppression": {Role.OWNER},
    "delete_subscribers": {Role.OWNER},
    "view_audit": {Role.OWNER},
}


class Acting(Protocol):
    """What a permission check needs of whoever acts: an Editor, or the columns of one."""

    role: Role
    is_active: bool


def can(editor: Acting, permission: str) -> bool:
    """True when the editor's role grants `permission`."""
    return editor.is_active and editor.role in PERMISSIONS[permission]


def require(editor: Acting, permission: str) -> None:
    """Raise Forbidden unless the editor's role grants `permission`."""
    if not can(editor, permission):
        raise Forbidden(
            i18n.admin_gettext("Your role (%(role)s) does not allow this.", role=editor.role.value)
        )


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError(
            {"password": i18n.admin_gettext("Use at least %(min)s characters.", min=MIN_PASSWORD)}
        )


def create_editor(
    session: Session,
    email: str,
    role: Role | str,
    password: str | None = None,
    *,
    actor: Editor | None = None,
    ip: str | None = None,
) -> tuple[Editor, str]:
    """Create an account; returns it and its password (generated when none is given)."""
    address = normalise_email(email)
    if session.scalar(select(Editor.id).where(Editor.email == address)) is not None:
        raise ValidationError(
            {"email": i18n.admin_gettext("An editor with this address already exists.")}
        )
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError(
            {"role": i18n.admin_gettext("Choose owner, editor or viewer.")}
        ) from None
    password = password or secrets.token_urlsafe(15)
    check_password_strength(password)
    editor = Editor(email=address, role=role, password_hash=hash_password(password))
    session.add(editor)
    session.flush()
    audit.record(session, actor, "editor.create", f"editor:{editor.id}", ip, role=role.value)
    return editor, password


def owner_count(session: Session) -> int:
    """How many active owners there are (never let it reach zero)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Editor)
            .where(Editor.role == Role.OWNER, Editor.is_active)
        )
        or 0
    )


def authenticate(
    session: Session, email: str, password: str, totp: str = "", ip: str | None = None
) -> Editor | None:
    """The editor if the credentials are right and `ip` may still guess, else None.

    The Argon2 work is done on every path (unknown address, switched-off account, blocked
    address), so neither the time nor the answer tells whether an account exists.
    """
    try:
        address = normalise_email(email)
    except ValidationError:
        address = ""
    editor = session.scalar(select(Editor).where(Editor.email == address)) if address else None
    account = address or email
    blocked = throttle.guessing_blocked(account, ip, time.time())
    password_ok = _verify(editor.password_hash if editor else _DUMMY_HASH, password)
    if blocked:
        return None
    if editor is None or not editor.is_active or not password_ok or not _totp_ok(editor, totp):
        _guess_failed(session, editor, account, ip)
        return None
    throttle.guess_succeeded(account, ip)
    editor.failed_logins = 0
    editor.locked_until = None
    editor.last_login_at = utcnow()
    if _hasher.check_needs_rehash(editor.password_hash):
        editor.password_hash = hash_password(password)
    return editor


def _guess_failed(session: Session, editor: Editor | None, account: str, ip: str | None) -> None:
    """Count a wrong password or code; the account shows (and the log says) when a block starts."""
    started = throttle.guess_failed(account, ip, time.time())
    if editor is None:
        return
    editor.failed_logins += 1
    if started:
        editor.locked_until = utcnow() + LOCKOUT
        audit.record(session, editor, "editor.locked", f"editor:{editor.id}", ip)


def _check_current_password(
    session: Session, editor: Editor, password: str, ip: str | None, field_name: str
) -> None:
    """Refuse a wrong current password, counted like a failed login (and blocked alike)."""
    blocked = throttle.guessing_blocked(editor.email, ip, time.time())
    right = _verify(editor.password_hash, password)
    if blocked:
        raise ValidationError({field_name: i18n.admin_gettext(TOO_MANY)})
    if not right:
        _guess_failed(session, editor, editor.email, ip)
        raise ValidationError(
            {field_name: i18n.admin_gettext("This is not your current password.")}
        )


def is_locked(editor: Editor) -> bool:
    """True while some address is blocked from guessing this account's password."""
    return bool(editor.locked_until and editor.locked_until > utcnow())


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _totp_ok(editor: Editor, code: str) -> bool:
    """No two-factor, or a code of an unused time step (remembered: a code works only once)."""
    if not editor.totp_secret:
        return True
    try:
        secret = open_secret(editor.totp_secret)
    except InvalidToken:
        return False  # CLARION_SECRET_KEY changed: an owner resets this editor's two-factor
    step = _matching_step(secret, code, editor.totp_last_step)
    if step is None:
        return False
    editor.totp_last_step = step
    return True


def _matching_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step (now, or one either side for clock drift) that produced `code`, if unused."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    now = int(time.time()) // totp.interval
    for step in (now - 1, now, now + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"clarion:totp-secrets:v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal_secret(secret: str) -> str:
    """A TOTP secret encrypted under a key derived from CLARION_SECRET_KEY, to be stored."""
    return _fernet(get_settings().secret_key).encrypt(secret.encode()).decode()


def open_secret(sealed: str) -> str:
    """The TOTP secret inside a sealed value; InvalidToken if the key has changed."""
    return _fernet(get_settings().secret_key).decrypt(sealed.encode()).decode()


def is_sealed(value: str) -> bool:
    """True for a sealed value (a Fernet token), False for a base32 secret stored in the clear."""
    return value.startswith("gAAAAA")


def pending_secret(editor: Editor) -> str | None:
    """The secret being enrolled, to show as a QR code; None if none (or the key changed)."""
    if not editor.totp_pending_secret:
        return None
    try:
        return open_secret(editor.totp_pending_secret)
    except InvalidToken:
        return None


def set_password(session: Session, editor: Editor, password: str) -> None:
    """Change a password; existing sessions of that editor end."""
    check_password_strength(password)
    editor.password_hash = hash_password(password)
    end_sessions(editor)


def end_sessions(editor: Editor) -> None:
    """End every session of this editor (logout, password change): old cookies stop working."""
    editor.session_version += 1


# What an editor may do through a credential kept outside the session cookie (an API token)
# can be cached per process while this stamp in Redis is unchanged.
STANDING_KEY = "clarion:editors:standing"
_STANDING_PENDING = "clarion.standing_changed"
_STANDING_LISTENING = "clarion.standing_listening"


def standing() -> str:
    """The stamp of everyone's standing (roles, accounts on or off, tokens revoked) now."""
    # Gone again at once (an eviction): a value of no one's, so that nothing is trusted.
    return redisconn.stamp(STANDING_KEY) or "unknown-" + secrets.token_hex(8)


def standing_changed(session: Session) -> None:
    """Say that someone's standing changes when this session commits: caches start over."""
    session.info[_STANDING_PENDING] = True
    if session.info.get(_STANDING_LISTENING):
        return
    session.info[_STANDING_LISTENING] = True
    # After the commit, not before: a process reading the old row between a stamp changed
    # early and the commit would cache it under the new stamp, for good. (A session rolled
    # back keeps the mark: its next commit changes the stamp for nothing, which costs a miss.)
    event.listen(session, "after_commit", _new_standing)


def _new_standing(session: Session) -> None:
    if session.info.pop(_STANDING_PENDING, None):
        redisconn.renew_stamp(STANDING_KEY)


def change_role(
    session: Session, actor: Editor, editor: Editor, role: Role, ip: str | None
) -> None:
    """Change an editor's role (owners only); the last owner cannot be demoted."""
    require(actor, "manage_editors")
    if editor.role == Role.OWNER and role != Role.OWNER and owner_count(session) <= 1:
        raise ValidationError({"role": i18n.admin_gettext("There must remain at least one owner.")})
    old = editor.role
    editor.role = role
    editor.session_version += 1
    standing_changed(session)
    audit.record(
        session, actor, "editor.role", f"editor:{editor.id}", ip, old=old.value, new=role.value
    )


def get_editor(session: Session, editor_id: int) -> Editor:
    """The editor with this id, or NotFound."""
    editor = session.get(Editor, editor_id)
    if editor is None:
        raise NotFound(i18n.admin_gettext("No such editor."))
    return editor


def list_editors(session: Session) -> list[Editor]:
    """Every account, owners first."""
    rank = {Role.OWNER: 0, Role.EDITOR: 1, Role.VIEWER: 2}
    return sorted(session.scalars(select(Editor)), key=lambda e: (rank[e.role], e.email))


def _keep_an_owner(session: Session, editor: Editor) -> None:
    if editor.role == Role.OWNER and editor.is_active and owner_count(session) <= 1:
        raise ValidationError(
            {"role": i18n.admin_gettext("There must remain at least one active owner.")}
        )


def deactivate(session: Session, actor: Editor, editor: Editor, ip: str | None) -> None:
    """Switch an account off (owners only); its sessions end at once. Never the last owner."""
    require(actor, "manage_editors")
    _keep_an_owner(session, editor)
    editor.is_active = False
    editor.session_version += 1
    standing_changed(session)
    audit.record(session, actor, "editor.deactivate", f"editor:{editor.id}", ip)


def reactivate(session: Session, actor: Editor, editor: Editor, ip: str | None) -> None:
    """Switch an account back on (owners only)."""
    require(actor, "manage_editors")
    editor.is_active = True
    editor.failed_logins = 0
    editor.locked_until = None
    throttle.forget_guesses(editor.email)
    audit.record(session, actor, "editor.reactivate", f"editor:{editor.id}", ip)


def unlock(session: Session, actor: Editor, editor: Editor, ip: str | None) -> None:
    """Lift every block on guessing this account's password before it expires (owners only)."""
    require(actor, "manage_editors")
    editor.locked_until = None
    editor.failed_logins = 0
    throttle.forget_guesses(editor.email)
    audit.record(session, actor, "editor.unlock", f"editor:{editor.id}", ip)


def reset_password(session: Session, actor: Editor, editor: Editor, ip: str | None) -> str:
    """Give an account a new random password, returned to be shown once (owners only)."""
    require(actor, "manage_editors")
    password = secrets.token_urlsafe(15)
    set_password(session, editor, password)
    audit.record(session, actor, "editor.password_reset", f"editor:{editor.id}", ip)
    return password


def change_own_password(
    session: Session, editor: Editor, current: str, new: str, ip: str | None
) -> None:
    """An editor changes their own password, proving they know the current one (guesses count)."""
    _check_current_password(session, editor, current, ip, "current_password")
    try:
        set_password(session, editor, new)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.errors["password"]}) from None
    audit.record(session, editor, "editor.password", f"editor:{editor.id}", ip)


def set_timezone(editor: Editor, zone: str) -> None:
    """The zone the editor's times are shown and entered in."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            {"timezone": i18n.admin_gettext("Choose a time zone such as Europe/Vilnius.")}
        ) from None
    editor.timezone = zone


def set_language(session: Session, editor: Editor, code: str, ip: str | None) -> None:
    """The language the admin speaks to this editor (one the admin ships)."""
    if code not in i18n.admin_languages():
        names = ", ".join(i18n.language_name(c) for c in i18n.admin_languages())
        raise ValidationError(
            {"language": i18n.admin_gettext("Choose one of: %(names)s.", names=names)}
        )
    if code != i18n.admin_language(editor.language):
        audit.record(session, editor, "editor.language", f"editor:{editor.id}", ip, language=code)
    editor.language = code


def begin_totp(editor: Editor) -> str:
    """Start enrolment: a new secret, kept (sealed) pending until a code from it is confirmed."""
    secret = pyotp.random_base32()
    editor.totp_pending_secret = seal_secret(secret)
    return secret


def totp_uri(editor: Editor, secret: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=editor.email, issuer_name=issuer)


def confirm_totp(session: Session, editor: Editor, code: str, ip: str | None) -> None:
    """Turn two-factor on once the editor proves their app produces the right codes."""
    secret = pending_secret(editor)
    if not secret:
        raise ValidationError(
            {"code": i18n.admin_gettext("Start again: there is no enrolment in progress.")}
        )
    step = _matching_step(secret, code, None)
    if step is None:
        raise ValidationError(
            {"code": i18n.admin_gettext("This code does not match; check the time on your phone.")}
        )
    editor.totp_secret = editor.totp_pending_secret
    editor.totp_pending_secret = None
    editor.totp_last_step = step  # the code that switched it on cannot also log in
    audit.record(session, editor, "editor.totp_on", f"editor:{editor.id}", ip)


def disable_totp(
    session: Session, actor: Editor, editor: Editor, ip: str | None, password: str = ""
) -> None:
    """Turn two-factor off: by the editor (with their password) or by an owner (lost phone)."""
    if actor.id == editor.id:
        _check_current_password(session, editor, password, ip, "password")
    else:
        require(actor, "manage_editors")
        editor.session_version += 1  # whoever holds the lost phone's session is logged out
    editor.totp_secret = None
    editor.totp_pending_secret = None
    editor.totp_last_step = None
    audit.record(session, actor, "editor.totp_off", f"editor:{editor.id}", ip)
