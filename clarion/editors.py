"""Editor accounts: argon2 passwords, roles, lockout after failed logins, optional TOTP."""

from __future__ import annotations

import secrets
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clarion import audit
from clarion.addresses import normalise_email
from clarion.db import utcnow
from clarion.errors import Forbidden, NotFound, ValidationError
from clarion.models import Editor, Role

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 12
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


def can(editor: Editor, permission: str) -> bool:
    """True when the editor's role grants `permission`."""
    return editor.is_active and editor.role in PERMISSIONS[permission]


def require(editor: Editor, permission: str) -> None:
    """Raise Forbidden unless the editor's role grants `permission`."""
    if not can(editor, permission):
        raise Forbidden(f"Your role ({editor.role.value}) does not allow this.")


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError({"password": f"Use at least {MIN_PASSWORD} characters."})


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
        raise ValidationError({"email": "An editor with this address already exists."})
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError({"role": "Choose owner, editor or viewer."}) from None
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


def authenticate(session: Session, email: str, password: str, totp: str = "") -> Editor | None:
    """The editor if the credentials are right and the account is not locked, else None."""
    try:
        address = normalise_email(email)
    except ValidationError:
        address = ""
    editor = session.scalar(select(Editor).where(Editor.email == address)) if address else None
    if editor is None or not editor.is_active:
        _verify(_DUMMY_HASH, password)
        return None
    now = utcnow()
    if editor.locked_until and editor.locked_until > now:
        return None
    if not _verify(editor.password_hash, password) or not _totp_ok(editor, totp):
        editor.failed_logins += 1
        if editor.failed_logins >= MAX_FAILED_LOGINS:
            editor.locked_until = now + LOCKOUT
            editor.failed_logins = 0
            audit.record(session, editor, "editor.locked", f"editor:{editor.id}")
        return None
    editor.failed_logins = 0
    editor.locked_until = None
    editor.last_login_at = now
    if _hasher.check_needs_rehash(editor.password_hash):
        editor.password_hash = hash_password(password)
    return editor


def is_locked(editor: Editor) -> bool:
    """True while an account is locked after too many failed logins."""
    return bool(editor.locked_until and editor.locked_until > utcnow())


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _totp_ok(editor: Editor, code: str) -> bool:
    if not editor.totp_secret:
        return True
    return pyotp.TOTP(editor.totp_secret).verify(code.strip().replace(" ", ""), valid_window=1)


def set_password(session: Session, editor: Editor, password: str) -> None:
    """Change a password; existing sessions of that editor end."""
    check_password_strength(password)
    editor.password_hash = hash_password(password)
    end_sessions(editor)


def end_sessions(editor: Editor) -> None:
    """End every session of this editor (logout, password change): old cookies stop working."""
    editor.session_version += 1


def change_role(
    session: Session, actor: Editor, editor: Editor, role: Role, ip: str | None
) -> None:
    """Change an editor's role (owners only); the last owner cannot be demoted."""
    require(actor, "manage_editors")
    if editor.role == Role.OWNER and role != Role.OWNER and owner_count(session) <= 1:
        raise ValidationError({"role": "There must remain at least one owner."})
    old = editor.role
    editor.role = role
    editor.session_version += 1
    audit.record(
        session, actor, "editor.role", f"editor:{editor.id}", ip, old=old.value, new=role.value
    )


def get_editor(session: Session, editor_id: int) -> Editor:
    """The editor with this id, or NotFound."""
    editor = session.get(Editor, editor_id)
    if editor is None:
        raise NotFound("No such editor.")
    return editor


def list_editors(session: Session) -> list[Editor]:
    """Every account, owners first."""
    rank = {Role.OWNER: 0, Role.EDITOR: 1, Role.VIEWER: 2}
    return sorted(session.scalars(select(Editor)), key=lambda e: (rank[e.role], e.email))


def _keep_an_owner(session: Session, editor: Editor) -> None:
    if editor.role == Role.OWNER and editor.is_active and owner_count(session) <= 1:
        raise ValidationError({"role": "There must remain at least one active owner."})


def deactivate(session: Session, actor: Editor, editor: Editor, ip: str | None) -> None:
    """Switch an account off (owners only); its sessions end at once. Never the last owner."""
    require(actor, "manage_editors")
    _keep_an_owner(session, editor)
    editor.is_active = False
    editor.session_version += 1
    audit.record(session, actor, "editor.deactivate", f"editor:{editor.id}", ip)


def reactivate(session: Session, actor: Editor, editor: Editor, ip: str | None) -> None:
    """Switch an account back on (owners only)."""
    require(actor, "manage_editors")
    editor.is_active = True
    editor.failed_logins = 0
    editor.locked_until = None
    audit.record(session, actor, "editor.reactivate", f"editor:{editor.id}", ip)


def unlock(session: Session, actor: Editor, editor: Editor, ip: str | None) -> None:
    """Lift a lockout after failed logins before it expires (owners only)."""
    require(actor, "manage_editors")
    editor.locked_until = None
    editor.failed_logins = 0
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
    """An editor changes their own password, proving they know the current one."""
    if not _verify(editor.password_hash, current):
        raise ValidationError({"current_password": "This is not your current password."})
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
        raise ValidationError({"timezone": "Choose a time zone such as Europe/Vilnius."}) from None
    editor.timezone = zone


def begin_totp(editor: Editor) -> str:
    """Start enrolment: a new secret, kept pending until a code from it is confirmed."""
    editor.totp_pending_secret = pyotp.random_base32()
    return editor.totp_pending_secret


def totp_uri(editor: Editor, secret: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=editor.email, issuer_name=issuer)


def confirm_totp(session: Session, editor: Editor, code: str, ip: str | None) -> None:
    """Turn two-factor on once the editor proves their app produces the right codes."""
    secret = editor.totp_pending_secret
    if not secret:
        raise ValidationError({"code": "Start again: there is no enrolment in progress."})
    if not pyotp.TOTP(secret).verify(code.strip().replace(" ", ""), valid_window=1):
        raise ValidationError({"code": "This code does not match; check the time on your phone."})
    editor.totp_secret = secret
    editor.totp_pending_secret = None
    audit.record(session, editor, "editor.totp_on", f"editor:{editor.id}", ip)


def disable_totp(
    session: Session, actor: Editor, editor: Editor, ip: str | None, password: str = ""
) -> None:
    """Turn two-factor off: by the editor (with their password) or by an owner (lost phone)."""
    if actor.id == editor.id:
        if not _verify(editor.password_hash, password):
            raise ValidationError({"password": "This is not your current password."})
    else:
        require(actor, "manage_editors")
        editor.session_version += 1  # whoever holds the lost phone's session is logged out
    editor.totp_secret = None
    editor.totp_pending_secret = None
    audit.record(session, actor, "editor.totp_off", f"editor:{editor.id}", ip)
