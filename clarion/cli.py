"""The `clarion` command: set up, run, and operate an installation from the terminal."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

import click

from clarion.errors import ClarionError, ConfigError, ValidationError


class ClarionGroup(click.Group):
    """Turns domain errors into one clear line and exit status 1, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(f"Configuration: {exc}") from None
        except ValidationError as exc:
            lines = "\n".join(f"  {field}: {message}" for field, message in exc.errors.items())
            raise click.ClickException(f"Refused:\n{lines}") from None
        except ClarionError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=ClarionGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Clarion: email newsletters and action alerts for campaigns."""
    if ctx.invoked_subcommand == "check-config":
        return  # it reports the permissions as they are, without changing them first
    from clarion.config import get_settings
    from clarion.config.instance import make_private

    try:
        instance_dir = get_settings().instance_dir
    except ConfigError:
        return  # commands that need the settings say what is wrong with them
    make_private(instance_dir)


@main.command("check-config")
def check_config() -> None:
    """Validate the configuration and print what is in effect (secrets hidden)."""
    from clarion.config import get_settings
    from clarion.config.instance import exposed

    s = get_settings()
    click.echo(f"database   {s.database_url.split('@')[-1]}")
    click.echo(f"redis      {s.redis_url.split('@')[-1]}")
    click.echo(f"smtp       {', '.join(srv.name for srv in s.smtp_servers)}")
    click.echo(f"base url   {s.base_url}")
    click.echo(f"from       {s.mail_from}")
    click.echo(f"instance   {s.instance_dir}")
    loose = exposed(s.instance_dir)
    if loose:
        click.echo(
            "warning    other accounts on this machine can read or enter these (the database, "
            "secret key and exports live here):",
            err=True,
        )
        for line in loose:
            click.echo(f"             {line}", err=True)
        click.echo(f"           fix: chmod -R go-rwx {s.instance_dir}", err=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from clarion import schema
    from clarion.config import get_settings

    schema.upgrade(get_settings().database_url, revision)
    click.echo("Database is up to date.")


@main.group()
def editors() -> None:
    """Editor accounts."""


@editors.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["owner", "editor", "viewer"]), default="editor")
@click.option(
    "--password",
    envvar="CLARION_NEW_PASSWORD",
    default=None,
    help="Default: a random one, printed once.",
)
def editors_create(email: str, role: str, password: str | None) -> None:
    """Create an editor account and print its password once."""
    from clarion import editors as domain
    from clarion.db import session_scope

    with session_scope() as session:
        editor, secret = domain.create_editor(session, email, role, password)
        click.echo(f"Created {editor.role.value} {editor.email}")
    if password is None:
        click.echo(f"Password (shown once): {secret}")


@main.group("api-tokens")
def api_tokens() -> None:
    """API tokens: bearer tokens editors give to programs (the /api/v1 REST API)."""


@api_tokens.command("create")
@click.argument("email")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["read", "write", "send", "import"]),
    help="What the token may do (repeatable); bounded by the editor's role.",
)
@click.option("--expires", "days", type=int, default=None, help="Days until it stops working.")
@click.option("--name", default="", help="What the token is for, shown in lists.")
def api_tokens_create(email: str, scopes: tuple[str, ...], days: int | None, name: str) -> None:
    """Make a token acting for editor EMAIL and print it once."""
    from clarion.db import session_scope
    from clarion.integrations import apitokens

    with session_scope() as session:
        editor = _editor_by_email(session, email)
        token, secret = apitokens.create_token(
            session, editor, list(scopes), name=name, expires_days=days
        )
        token_id = token.id
    click.echo(f"Token {token_id} for {email}, scopes {', '.join(sorted(set(scopes)))}")
    click.echo(f"Token (shown once): {secret}")


@api_tokens.command("list")
@click.argument("email", required=False)
def api_tokens_list(email: str | None) -> None:
    """List tokens (of EMAIL, or everyone's): id, editor, scopes, expiry, last use, state."""
    from clarion.db import session_factory
    from clarion.integrations import apitokens
    from clarion.models import Editor

    with session_factory(reader=True)() as session:
        editor = _editor_by_email(session, email) if email else None
        emails = {e.id: e.email for e in session.query(Editor)}
        for t in apitokens.tokens_of(session, editor):
            state = "revoked" if t.revoked_at else "active"
            click.echo(
                f"{t.id}\t{emails.get(t.editor_id, '?')}\t{','.join(t.scopes)}\t{t.prefix}…\t"
                f"expires {_when(t.expires_at) or 'never'}\t"
                f"last used {_when(t.last_used_at) or 'never'}\t{state}\t{t.name}"
            )


@api_tokens.command("revoke")
@click.argument("token_id", type=int)
def api_tokens_revoke(token_id: int) -> None:
    """Switch token TOKEN_ID off for good."""
    from clarion.db import session_scope
    from clarion.integrations import apitokens

    with session_scope() as session:
        apitokens.revoke(session, None, token_id)
    click.echo(f"Token {token_id} is revoked.")


def _editor_by_email(session, email: str):
    from sqlalchemy import select

    from clarion.addresses import normalise_email
    from clarion.errors import NotFound
    from clarion.models import Editor

    editor = session.scalar(select(Editor).where(Editor.email == normalise_email(email)))
    if editor is None:
        raise NotFound(f"No editor with the address {email}.")
    return editor


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


@main.group()
def subscribers() -> None:
    """Subscribers: import from CSV."""


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "slugs", multiple=True, required=True, help="Slug of a list (repeatable).")
@click.option(
    "--confirmed",
    is_flag=True,
    help="Rows whose consent column says yes become subscribed (needs a consent column).",
)
@click.option("--encoding", type=click.Choice(["auto", "utf-8", "cp1251", "cp1252", "utf-16"]))
@click.option("--tag", "extra_tags", multiple=True, help="A tag for every imported row.")
def subscribers_import(
    file: Path, slugs: tuple[str, ...], confirmed: bool, encoding: str | None, extra_tags
) -> None:
    """Import FILE.csv into the lists; without --confirmed everyone stays pending."""
    from clarion.audience import imports, lists
    from clarion.db import session_factory

    session = session_factory()()
    try:
        data = file.read_bytes()
        found = imports.preview(data, encoding or "auto")
        mapping = dict(found.mapping)
        has_consent = "consent" in mapping.values()
        if confirmed and not has_consent:
            raise click.ClickException(
                "--confirmed needs a consent column (named e.g. consent or opt-in) whose yes "
                "rows are the people who agreed; this file has none."
            )
        if has_consent and not confirmed:
            click.echo("The consent column is ignored without --confirmed: all rows stay pending.")
            mapping = {i: f for i, f in mapping.items() if f != "consent"}
        options = imports.ImportOptions(
            file_name=file.name,
            list_ids=[lists.by_slug(session, slug).id for slug in slugs],
            mapping=mapping,
            encoding=found.encoding,
            delimiter=found.delimiter,
            has_header=found.has_header,
            extra_tags=list(extra_tags),
            editor_email=f"command line ({getpass.getuser()})",
        )
        job = imports.upload(session, None, data, file.name)
        imports.configure(session, job, options)
        session.commit()
        _run_with_bar(session, imports.run_import(session, job), f"Importing {file.name}")
        click.echo(
            f"{job.created} new, {job.updated} updated, {job.rejected} rejected "
            f"of {job.total} rows."
        )
        if job.rejected:
            click.echo(f"Rejected rows with their reasons: {job.result_path}")
        if job.status != "done":
            raise click.ClickException(job.error or "The import stopped.")
    finally:
        session.close()


def _run_with_bar(session, steps, label: str) -> None:
    """Commit after each chunk a domain generator yields, and move a progress bar."""
    job = next(steps)
    session.commit()
    with click.progressbar(length=max(job.total, 1), label=label, show_pos=True) as bar:
        done = job.processed
        for job in steps:
            session.commit()
            bar.update(job.processed - done)
            done = job.processed


@main.group()
def alerts() -> None:
    """Alerts: create drafts from JSON, send them and watch them go."""


@alerts.command("create")
@click.argument("file", type=click.File("rb"))
def alerts_create(file) -> None:
    """Create a draft from FILE.json (the form's fields; lists by id or slug); prints its id."""
    import json

    from clarion.alerts import campaigns
    from clarion.db import session_scope

    try:
        data = json.loads(file.read().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file.name} is not valid JSON: {exc}") from None
    with session_scope() as session:
        draft = campaigns.Draft.from_json_names(session, data)
        alert = campaigns.create_draft(session, None, draft)
        alert_id = alert.id
    click.echo(alert_id)


@alerts.command("send")
@click.argument("alert_id", type=int)
@click.option("--wait", is_flag=True, help="Show live progress until the send ends.")
@click.option("--interval", type=float, default=1.0, show_default=True, hidden=True)
def alerts_send(alert_id: int, wait: bool, interval: float) -> None:
    """Freeze alert ALERT_ID and send it to its audience through the workers."""
    import clarion.actions.petitions  # noqa: F401 (registers a petition's progress for the freeze)
    from clarion.db import session_scope
    from clarion.delivery import dispatch, sending

    with session_scope() as session:
        alert = sending.start(session, sending.get_alert(session, alert_id))
        subject = alert.subject
    dispatch.enqueue_dispatch(alert_id)
    click.echo(f"Sending alert {alert_id}: {subject}")
    if wait:
        sys.exit(_watch(alert_id, interval))


@alerts.command("follow-up")
@click.argument("alert_id", type=int)
@click.option("--rule", type=click.Choice(["click", "sign", "share"]), required=True,
              help="Who gets it: recipients who did not click / sign / share.")  # fmt: skip
@click.option("--petition", type=int, help="The petition of --rule sign (default: its own).")
@click.option("--delay-hours", type=int, help="Schedule it this long after ALERT_ID started.")
def alerts_follow_up(alert_id: int, rule: str, petition: int | None, delay_hours: int | None):
    """Write a draft of ALERT_ID to its recipients who did not act; prints its id."""
    from clarion.alerts import campaigns, followups
    from clarion.db import session_scope

    with session_scope() as session:
        origin = campaigns.get_alert(session, alert_id)
        alert = followups.create(
            session, None, origin, rule, petition_id=petition, delay_hours=delay_hours
        )
        follow_up_id = alert.id
    click.echo(follow_up_id)


@main.group()
def segments() -> None:
    """Saved segments: named conditions on what readers did, reused by alerts' audiences."""


@segments.command("create")
@click.argument("name")
@click.argument("file", type=click.File("rb"))
def segments_create(name: str, file) -> None:
    """Save the conditions in FILE.json (README "Segments") as segment NAME; prints its id."""
    import json

    from clarion.alerts import segments as segment_store
    from clarion.db import session_scope

    try:
        data = json.loads(file.read().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file.name} is not valid JSON: {exc}") from None
    with session_scope() as session:
        segment_id = segment_store.create(session, None, name, data).id
    click.echo(segment_id)


@segments.command("list")
def segments_list() -> None:
    """Every saved segment: its id, name and conditions (one line each)."""
    import json

    from clarion.alerts import segments as segment_store
    from clarion.db import session_scope

    with session_scope() as session:
        for segment in segment_store.all_segments(session):
            conditions = json.dumps(segment.conditions, ensure_ascii=False)
            click.echo(f"{segment.id}\t{segment.name}\t{conditions}")


def _watch(alert_id: int, interval: float) -> int:
    """Print progress until the alert is sent or cancelled (0) or paused (1)."""
    from clarion.db import session_factory
    from clarion.delivery import sending

    tty = sys.stdout.isatty()
    while True:
        with session_factory(reader=True)() as session:
            progress = sending.progress(session, alert_id)
        click.echo(("\r" if tty else "") + progress.line(), nl=not tty)
        if progress.done or progress.status == "paused":
            if tty:
                click.echo()
            if progress.status_reason:
                click.echo(progress.status_reason)
            return 0 if progress.done else 1
        time.sleep(interval)


@main.command()
@click.option("--demo/--no-demo", default=True, help="Create a demo list and a draft alert.")
def setup(demo: bool) -> None:
    """Create or upgrade the database, the first owner, and (once) a small demo."""
    from clarion import bootstrap

    report = bootstrap.setup(with_demo=demo)
    for line in report.lines:
        click.echo(line)


@main.command()
@click.option("--port", type=int, default=None, help="Default: CLARION_CATCHER_PORT (1025).")
def mailcatcher(port: int | None) -> None:
    """Run the local mail catcher (loopback SMTP sink shown in the admin Outbox)."""
    from clarion.config import get_settings
    from clarion.delivery.mailcatcher import start_catcher

    settings = get_settings()
    port = port or settings.catcher_port
    controller = start_catcher(settings.outbox_dir, settings.catcher_host, port)
    click.echo(f"Mail catcher on {settings.catcher_host}:{port}, storing in {settings.outbox_dir}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@main.command("bounce-server")
@click.option("--listen", default=None, help="host:port; default CLARION_BOUNCE_SMTP_LISTEN.")
def bounce_server(listen: str | None) -> None:
    """Receive bounces and mailto: unsubscribes by SMTP for the bounce domain (the MX)."""
    from clarion.bounces.server import start_bounce_server
    from clarion.config import get_settings

    settings = get_settings()
    host, port = settings.bounces.smtp_host, settings.bounces.smtp_port
    if listen:
        host, _, raw_port = listen.rpartition(":")
        if not host or not raw_port.isdigit():
            raise click.BadParameter("host:port, like 0.0.0.0:25", param_hint="--listen")
        port = int(raw_port)
    controller = start_bounce_server(settings, host, port)
    click.echo(f"Bounce server for {settings.bounce_domain} on {host}:{port}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@main.group()
def bounces() -> None:
    """Bounces and complaints: classify files, poll the bounce mailbox."""


@bounces.command("classify")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def bounces_classify(files: tuple[str, ...]) -> None:
    """Print one JSON line per FILE: file, recipients, class, status, reason."""
    import json

    from clarion.bounce_classify import classify_files

    for row in classify_files(files):
        click.echo(json.dumps(row, ensure_ascii=False))


@bounces.command("poll-imap")
def bounces_poll_imap() -> None:
    """Fetch and process the bounce mailbox (CLARION_BOUNCE_IMAP_URL) once, now."""
    from clarion.bounces import inbound
    from clarion.bounces.imap import poll
    from clarion.config import get_settings

    mailbox = get_settings().bounces.imap
    if mailbox is None:
        raise click.ClickException("CLARION_BOUNCE_IMAP_URL is not set.")
    result = poll(mailbox)
    click.echo(
        f"{mailbox.name}: {len(result.processed)} processed, {len(result.failed)} failed, "
        f"{len(result.skipped)} left after {inbound.MAX_ATTEMPTS} attempts"
    )


@main.group()
def i18n() -> None:
    """Readers' languages: the message catalogs under translations/."""


@i18n.command("update")
@click.option("--add", "new", multiple=True, metavar="LANG", help="Start a catalog for LANG.")
@click.option(
    "--add-admin", "new_admin", multiple=True, metavar="LANG", help="Start an admin catalog."
)
def i18n_update(new: tuple[str, ...], new_admin: tuple[str, ...]) -> None:
    """Extract the messages from the code and templates and update every catalog."""
    from clarion import i18n as languages
    from clarion.i18n import catalogs

    for domain, added in ((languages.DOMAIN, new), (languages.ADMIN_DOMAIN, new_admin)):
        for lang, untranslated in catalogs.update_catalogs(added, domain).items():
            path = catalogs.po_path(lang, domain).relative_to(languages.TRANSLATIONS.parent)
            click.echo(f"{path}: {untranslated} to translate")
    languages.compile_catalogs()


@i18n.command("compile")
def i18n_compile() -> None:
    """Compile the catalogs (.po) that changed into the files Clarion reads (.mo)."""
    from clarion import i18n as languages

    written = languages.compile_catalogs()
    click.echo(f"{len(written)} catalog(s) compiled, the others were up to date")


@i18n.command("check")
def i18n_check() -> None:
    """Fail if a catalog misses a message, leaves one untranslated or fuzzy, or breaks one."""
    from clarion.i18n import catalogs

    found = catalogs.all_problems()
    for problem in found:
        click.echo(problem)
    if found:
        raise click.ClickException(f"{len(found)} problem(s) in the catalogs")
    click.echo("catalogs complete")


@main.command()
@click.option("--no-setup", is_flag=True, help="Skip migrations and the first-run set-up.")
@click.argument("processes", nargs=-1)
def up(no_setup: bool, processes: tuple[str, ...]) -> None:
    """Start web, worker, beat and the mail catcher from the Procfile; Ctrl-C stops all."""
    from clarion import bootstrap

    sys.exit(bootstrap.run_all(run_setup=not no_setup, only=processes))


if __name__ == "__main__":
    main()
