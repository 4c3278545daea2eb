"""CSV import of subscribers: column mapping, row checks, duplicates, consent, progress."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion import jobs
from clarion.audience import csvfiles, tags
from clarion.audience.csvfiles import decode
from clarion.audience.import_writer import ImportOptions, ImportWriter, ParsedRow
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.errors import ValidationError
from clarion.i18n import admin_gettext
from clarion.models import Editor, Job, MailingList

FIELDS = ("email", "name", "language", "tags", "consent")
CHUNK = 2000
YES = {"yes", "y", "true", "1", "x", "✓", "✔", "on", "confirmed", "opt-in", "optin", "subscribed",
       "agreed", "да", "так", "tak", "ja", "oui", "si", "sí"}  # fmt: skip
HEADER_GUESSES = {
    "email": {"email", "e-mail", "mail", "email address", "e-mail address", "адрес", "почта",
              "электронная почта", "пошта", "адрас"},
    "name": {"name", "full name", "fullname", "имя", "імя", "фио", "ім'я", "imię", "nazwisko"},
    "language": {"language", "lang", "locale", "язык", "мова", "język"},
    "tags": {"tags", "tag", "labels", "label", "groups", "теги", "тэгі"},
    "consent": {"consent", "opt-in", "optin", "opted in", "confirmed", "gdpr", "agreed",
                "permission", "согласие", "згода", "zgoda"},
}  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def guess_mapping(header: Sequence[str]) -> dict[int, str]:
    """Column index -> field, from header names in several languages."""
    mapping: dict[int, str] = {}
    for index, title in enumerate(header):
        key = " ".join(title.strip().lower().replace("_", " ").split())
        for name, spellings in HEADER_GUESSES.items():
            if key in spellings and name not in mapping.values():
                mapping[index] = name
    return mapping


def _looks_like_header(row: Sequence[str]) -> bool:
    return not any("@" in cell for cell in row)


@dataclass
class Preview:
    """The first rows of a file as Clarion reads them, to check before importing."""

    encoding: str
    delimiter: str
    has_header: bool
    header: list[str]
    rows: list[list[str]]
    mapping: dict[int, str]
    columns: int


def preview(data: bytes, encoding: str = "auto", delimiter: str = "") -> Preview:
    """Decode and parse the start of a file and guess which column holds what."""
    decoded = decode(data, encoding)
    delimiter = delimiter or csvfiles.sniff_delimiter(decoded.text)
    reader = csv.reader(io.StringIO(decoded.text), delimiter=delimiter)
    first: list[list[str]] = []
    for row in reader:
        if any(cell.strip() for cell in row):
            first.append(row)
        if len(first) == 6:
            break
    if not first:
        raise ValidationError({"file": admin_gettext("The file is empty.")})
    has_header = _looks_like_header(first[0])
    header = first[0] if has_header else [_column(i + 1) for i in range(len(first[0]))]
    rows = first[1:] if has_header else first[:5]
    mapping = guess_mapping(header) if has_header else _guess_from_values(rows)
    width = max(len(r) for r in first)
    return Preview(decoded.encoding, delimiter, has_header, header, rows, mapping, width)


def _column(number: int) -> str:
    return admin_gettext("Column %(n)s", n=number)


def _guess_from_values(rows: list[list[str]]) -> dict[int, str]:
    for index in range(max((len(r) for r in rows), default=0)):
        if any("@" in (r[index] if index < len(r) else "") for r in rows):
            return {index: "email"}
    return {}


def check_options(session: Session, options: ImportOptions) -> None:
    """Refuse a mapping without an address column, unknown fields or lists, bad tags."""
    errors: dict[str, str] = {}
    fields = list(options.mapping.values())
    if "email" not in fields:
        errors["mapping"] = admin_gettext("Choose which column holds the email addresses.")
    elif any(fields.count(f) > 1 for f in FIELDS):
        errors["mapping"] = admin_gettext("Each field can come from one column only.")
    elif not set(fields) <= set(FIELDS):
        errors["mapping"] = admin_gettext(
            "Columns can be: %(fields)s, or ignored.", fields=", ".join(FIELDS)
        )
    known = set(session.scalars(select(MailingList.id)))
    if not options.list_ids:
        errors["lists"] = admin_gettext("Choose at least one list to import into.")
    elif not set(options.list_ids) <= known:
        errors["lists"] = admin_gettext("One of the chosen lists does not exist.")
    for raw in options.extra_tags:
        try:
            tags.clean_name(raw)
        except ValidationError as exc:
            errors["extra_tags"] = f"{raw!r}: {exc.errors['name']}"
    if errors:
        raise ValidationError(errors)


MAX_FILE_NAME = 200


def upload(session: Session, editor: Editor | None, data: bytes, file_name: str) -> Job:
    """Keep an uploaded file in instance/imports and open a job waiting for its mapping."""
    # Binary or empty: refused at once; the encoding is chosen when mapping.
    csvfiles.check_text(data)
    name = Path(file_name or "upload.csv").name[:MAX_FILE_NAME]
    job = jobs.new_job(session, "import", editor, {"file_name": name}, status=jobs.MAPPING)
    path = jobs.job_dir(get_settings().instance_dir, "import") / f"{job.uid}.csv"
    path.write_bytes(data)
    path.chmod(0o600)
    job.input_path = str(path)
    job.result_path = str(path.with_name(f"{job.uid}-rejected.csv"))
    return job


def configure(session: Session, job: Job, options: ImportOptions) -> None:
    """Check the mapping and lists against the file, then queue the job."""
    if job.status != jobs.MAPPING:
        raise ValidationError({"job": admin_gettext("This import has already started.")})
    check_options(session, options)
    decode(Path(job.input_path).read_bytes(), options.encoding)
    job.options = options.to_json()
    job.status = jobs.QUEUED


def file_preview(job: Job, encoding: str = "auto", delimiter: str = "") -> Preview:
    """The preview of a job's uploaded file."""
    return preview(Path(job.input_path).read_bytes(), encoding, delimiter)


def _rows(text: str, options: ImportOptions) -> Iterator[ParsedRow]:
    first = True
    for line, cells, error in csvfiles.records(text, options.delimiter):
        if cells is None:
            first = False
            yield ParsedRow(line, [], reason=error)
            continue
        if first and options.has_header:
            first = False
            continue
        first = False
        if not any(c.strip() for c in cells):
            continue
        yield ParsedRow(line, cells)


class AddressChecker:
    """email-validator's verdict, with each domain checked once: an import repeats a few
    domains thousands of times, and checking the domain is most of the validator's work."""

    _DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
    _ASCII_DOMAIN = re.compile(r"[A-Za-z0-9.-]{1,253}")

    def __init__(self) -> None:
        self.domains: dict[str, str | None] = {}

    def normalise(self, raw: str) -> str:
        """The address as validate_email normalises it (lower-cased); ValueError says why not."""
        local, at, domain = raw.rpartition("@")
        plain = (
            at
            and len(raw) <= 254
            and len(local) <= 64
            and self._DOT_ATOM.fullmatch(local)
            and self._ASCII_DOMAIN.fullmatch(domain)
        )
        if plain:
            key = domain.lower()
            if key not in self.domains:
                self.domains[key] = self._domain(key)
            checked = self.domains[key]
            if checked is not None:
                return f"{local}@{checked}".lower()
        try:
            return validate_email(raw, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            problem = admin_gettext(
                "Invalid email address %(address)s: %(error)s", address=repr(raw), error=exc
            )
            raise ValueError(problem) from None

    @staticmethod
    def _domain(domain: str) -> str | None:
        try:
            return validate_email(f"a@{domain}", check_deliverability=False).domain
        except EmailNotValidError:
            return None  # the full check gives the reason


class RowChecker:
    """Validates the cells of one row against the mapping; notes duplicates within the file."""

    def __init__(self, options: ImportOptions) -> None:
        self.options = options
        self.columns = {name: index for index, name in options.mapping.items()}
        self.languages = dict(get_settings().languages)
        self.by_label = {label.lower(): code for code, label in self.languages.items()}
        self.default_language = next(iter(self.languages))
        self.seen: dict[str, int] = {}
        self.width = max(options.mapping) + 1
        self.addresses = AddressChecker()

    def cell(self, row: ParsedRow, name: str) -> str:
        index = self.columns.get(name)
        if index is None or index >= len(row.cells):
            return ""
        return row.cells[index].strip()

    def check(self, row: ParsedRow) -> ParsedRow:
        if row.reason:
            return row
        if len(row.cells) < self.width and not self.cell(row, "email"):
            row.reason = admin_gettext(
                "Expected at least %(width)s columns, found %(found)s.",
                width=self.width,
                found=len(row.cells),
            )
            return row
        try:
            self._fill(row)
        except ValueError as exc:
            row.reason = str(exc)
            return row
        earlier = self.seen.setdefault(row.email, row.line)
        if earlier != row.line:
            row.reason = admin_gettext("Duplicate of line %(line)s in this file.", line=earlier)
        return row

    def _fill(self, row: ParsedRow) -> None:
        raw_email = self.cell(row, "email")
        if not raw_email:
            raise ValueError(admin_gettext("No email address."))
        row.email = self.addresses.normalise(raw_email)
        name = self.cell(row, "name")
        if len(name) > 200:
            raise ValueError(admin_gettext("The name is longer than 200 characters."))
        if _CONTROL.search(name):
            raise ValueError(admin_gettext("The name contains control characters."))
        row.name = name or None
        row.language = self._language(self.cell(row, "language"))
        row.tags = [self._tag(t) for t in re.split(r"[,;|]", self.cell(row, "tags")) if t.strip()]
        row.consent = self.cell(row, "consent").lower() in YES

    @staticmethod
    def _tag(raw: str) -> str:
        try:
            return tags.clean_name(raw)
        except ValidationError as exc:
            problem = admin_gettext(
                "Tag %(tag)s: %(error)s", tag=repr(raw.strip()), error=exc.errors["name"]
            )
            raise ValueError(problem) from None

    def _language(self, raw: str) -> str:
        if not raw:
            return self.default_language
        code = raw.lower().replace("_", "-")
        for candidate in (code, code.split("-")[0], self.by_label.get(code, "")):
            if candidate in self.languages:
                return candidate
        offered = ", ".join(self.languages)
        raise ValueError(
            admin_gettext(
                "Unknown language %(language)s (use one of %(offered)s).",
                language=repr(raw),
                offered=offered,
            )
        )


def run_import(session: Session, job: Job) -> Iterator[Job]:
    """Import the job's file chunk by chunk; yields after each chunk so the caller commits.

    A job interrupted by a crash resumes after the last committed chunk.
    """
    options = ImportOptions.from_json(job.options)
    try:
        text = decode(Path(job.input_path).read_bytes(), options.encoding).text
    except (ValidationError, OSError) as exc:
        jobs.fail(job, str(exc.errors["encoding"] if isinstance(exc, ValidationError) else exc))
        yield job
        return
    rows = list(_rows(text, options))
    job.total = len(rows)
    job.status = jobs.RUNNING
    done = job.processed
    _trim_rejected(Path(job.result_path), rows[done - 1].line if done else 0)
    writer = ImportWriter(session, options)
    checker = RowChecker(options)
    for row in rows[:done]:  # rebuild the duplicate check for rows already imported
        checker.check(row)
    yield job
    for start in range(done, len(rows), CHUNK):
        chunk = [checker.check(row) for row in rows[start : start + CHUNK]]
        outcome = writer.write(chunk)
        _append_rejected(Path(job.result_path), [r for r in chunk if r.reason], checker.width)
        job.processed += len(chunk)
        job.created += outcome["created"]
        job.updated += outcome["updated"]
        job.rejected += sum(1 for r in chunk if r.reason)
        yield job
    job.status = jobs.DONE
    job.finished_at = utcnow()
    Path(job.input_path).unlink(missing_ok=True)  # the upload is no longer needed
    yield job


def _trim_rejected(path: Path, last_line: int) -> None:
    """Keep only rejections of rows already committed (on resume), or start the file."""
    kept: list[list[str]] = []
    if last_line and path.exists():
        with path.open(encoding="utf-8-sig", newline="") as handle:
            kept = [
                r for r in csv.reader(handle) if r and r[0].isdigit() and int(r[0]) <= last_line
            ]
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["line", "reason", "original cells…"])
        out.writerows(kept)


def _append_rejected(path: Path, rejected: list[ParsedRow], width: int) -> None:
    if not rejected:
        return
    with path.open("a", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        for row in rejected:
            out.writerow([row.line, row.reason, *row.cells])
