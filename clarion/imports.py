"""CSV import of subscribers: encodings, column mapping, row checks, duplicates, bulk writes."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clarion import bulk, jobs, tags
from clarion.config import get_settings
from clarion.db import utcnow
from clarion.errors import ValidationError
from clarion.models import (
    ConsentRecord,
    Editor,
    Job,
    MailingList,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from clarion.models._types import new_uid

FIELDS = ("email", "name", "language", "tags", "consent")
CHUNK = 2000
ENCODINGS = {
    "utf-8": "UTF-8",
    "cp1251": "Cyrillic (Windows-1251)",
    "cp1252": "Western European (Windows-1252 / Latin-1)",
    "utf-16": "UTF-16 (Excel “Unicode text”)",
}
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
_SUBSCRIBERS = Subscriber.__table__
_SUBSCRIPTIONS = Subscription.__table__
_SUBSCRIBER_TAGS = SubscriberTag.__table__
_CONSENT_RECORDS = ConsentRecord.__table__
_WORD = re.compile(r"[^\W\d_]{2,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Decoded:
    """A file's text and the encoding it was read with."""

    text: str
    encoding: str


def decode(data: bytes, encoding: str = "auto") -> Decoded:
    """Read bytes as text: a BOM decides, else UTF-8, else Cyrillic or Western by the words."""
    if data.startswith(codecs.BOM_UTF8):
        return Decoded(_strict(data[3:], "utf-8"), "utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Decoded(_strict(data, "utf-16"), "utf-16")
    if encoding == "utf-16":
        return Decoded(_strict(data, "utf-16"), "utf-16")
    check_text(data)
    if encoding != "auto":
        if encoding not in ENCODINGS:
            raise ValidationError({"encoding": f"Choose one of: {', '.join(ENCODINGS)}."})
        return Decoded(_strict(data, encoding), encoding)
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    guess = _single_byte_guess(data)
    if guess is None:
        raise ValidationError(
            {
                "encoding": "This file is not UTF-8, and Clarion cannot tell whether it is "
                "Cyrillic (Windows-1251) or Western (Windows-1252 / Latin-1). Choose the "
                "encoding, or save the file as “CSV UTF-8” and upload it again."
            }
        )
    return Decoded(_strict(data, guess), guess)


def check_text(data: bytes) -> None:
    """Refuse empty files and binary ones (a spreadsheet uploaded instead of its CSV)."""
    if not data.strip():
        raise ValidationError({"file": "The file is empty."})
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationError(
            {
                "file": "This is not a CSV text file (it contains zero bytes); "
                "in your spreadsheet, use “Save as… CSV UTF-8”."
            }
        )


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        label = ENCODINGS.get(encoding, encoding)
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationError(
            {
                "encoding": f"This file is not valid {label}: byte 0x{data[exc.start]:02x} on "
                f"line {line} does not fit. Choose another encoding or save the file as "
                "“CSV UTF-8”."
            }
        ) from None


def _single_byte_guess(data: bytes) -> str | None:
    """cp1251 when non-ASCII words are wholly Cyrillic; cp1252 when accents sit in Latin words."""
    try:
        as_cyrillic = data.decode("cp1251")
    except UnicodeDecodeError:
        as_cyrillic = None
    western_ok = _decodes(data, "cp1252")
    if as_cyrillic is None:
        return "cp1252" if western_ok else None
    cyrillic = western = 0
    for word in _WORD.findall(as_cyrillic):
        if word.isascii():
            continue
        has_latin = any("a" <= c.lower() <= "z" for c in word)
        has_cyrillic = any("\u0400" <= c <= "\u04ff" for c in word)
        if has_cyrillic and not has_latin:
            cyrillic += 1
        elif has_cyrillic and has_latin:
            western += 1  # "Josй", "Mьller": accented Latin letters read as Cyrillic
    if cyrillic > western:
        return "cp1251"
    if western > cyrillic and western_ok:
        return "cp1252"
    return None


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon (European Excel) or tab, from the first lines."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in ",;\t"}
        return max(counts, key=lambda d: counts[d])


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
    delimiter = delimiter or sniff_delimiter(decoded.text)
    reader = csv.reader(io.StringIO(decoded.text), delimiter=delimiter)
    first: list[list[str]] = []
    for row in reader:
        if any(cell.strip() for cell in row):
            first.append(row)
        if len(first) == 6:
            break
    if not first:
        raise ValidationError({"file": "The file is empty."})
    has_header = _looks_like_header(first[0])
    header = first[0] if has_header else [f"Column {i + 1}" for i in range(len(first[0]))]
    rows = first[1:] if has_header else first[:5]
    mapping = guess_mapping(header) if has_header else _guess_from_values(rows)
    width = max(len(r) for r in first)
    return Preview(decoded.encoding, delimiter, has_header, header, rows, mapping, width)


def _guess_from_values(rows: list[list[str]]) -> dict[int, str]:
    for index in range(max((len(r) for r in rows), default=0)):
        if any("@" in (r[index] if index < len(r) else "") for r in rows):
            return {index: "email"}
    return {}


@dataclass
class ImportOptions:
    """What the editor chose: the file, how to read it, which column is what, which lists."""

    file_name: str
    list_ids: list[int]
    mapping: dict[int, str]
    encoding: str = "auto"
    delimiter: str = ","
    has_header: bool = True
    extra_tags: list[str] = field(default_factory=list)
    editor_email: str = ""

    def to_json(self) -> dict[str, Any]:
        """As stored on the job."""
        data = asdict(self)
        data["mapping"] = {str(k): v for k, v in self.mapping.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImportOptions:
        """Back from the job."""
        values = dict(data)
        values["mapping"] = {int(k): v for k, v in data["mapping"].items()}
        return cls(**values)


def check_options(session: Session, options: ImportOptions) -> None:
    """Refuse a mapping without an address column, unknown fields or lists, bad tags."""
    errors: dict[str, str] = {}
    fields = list(options.mapping.values())
    if "email" not in fields:
        errors["mapping"] = "Choose which column holds the email addresses."
    elif any(fields.count(f) > 1 for f in FIELDS):
        errors["mapping"] = "Each field can come from one column only."
    elif not set(fields) <= set(FIELDS):
        errors["mapping"] = f"Columns can be: {', '.join(FIELDS)}, or ignored."
    known = set(session.scalars(select(MailingList.id)))
    if not options.list_ids:
        errors["lists"] = "Choose at least one list to import into."
    elif not set(options.list_ids) <= known:
        errors["lists"] = "One of the chosen lists does not exist."
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
    check_text(data)  # binary or empty: refused at once; the encoding is chosen when mapping
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
        raise ValidationError({"job": "This import has already started."})
    check_options(session, options)
    decode(Path(job.input_path).read_bytes(), options.encoding)
    job.options = options.to_json()
    job.status = jobs.QUEUED


def file_preview(job: Job, encoding: str = "auto", delimiter: str = "") -> Preview:
    """The preview of a job's uploaded file."""
    return preview(Path(job.input_path).read_bytes(), encoding, delimiter)


@dataclass
class ParsedRow:
    """A data row: its line in the file, its cells, and its checked values or why it failed."""

    line: int
    cells: list[str]
    email: str = ""
    name: str | None = None
    language: str = ""
    tags: list[str] = field(default_factory=list)
    consent: bool = False
    reason: str = ""


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | None, str]]:
    """(first line, cells or None, error) for each record of the file.

    A stray quote makes a CSV reader swallow every line up to the next quote (often the end
    of the file); the lines of such a span are read again one by one, so only the line with
    the broken quoting is lost.
    """
    lines = text.splitlines(keepends=True)
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            yield start, next(reader), ""
        except StopIteration:
            return
        except csv.Error:
            for number in range(start, reader.line_num + 1):
                yield from _single_line(lines[number - 1], number, delimiter)


def _single_line(
    line: str, number: int, delimiter: str
) -> Iterator[tuple[int, list[str] | None, str]]:
    try:
        yield number, next(csv.reader([line], delimiter=delimiter, strict=True)), ""
    except (csv.Error, StopIteration) as exc:
        why = 'a quote (") is opened and never closed'
        if "expected after" in str(exc):
            why = 'text follows a closing quote (") inside a cell'
        yield number, None, f"Malformed CSV on line {number}: {why}."


def _rows(text: str, options: ImportOptions) -> Iterator[ParsedRow]:
    first = True
    for line, cells, error in _records(text, options.delimiter):
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
            raise ValueError(f"Invalid email address {raw!r}: {exc}") from None

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
            row.reason = f"Expected at least {self.width} columns, found {len(row.cells)}."
            return row
        try:
            self._fill(row)
        except ValueError as exc:
            row.reason = str(exc)
            return row
        earlier = self.seen.setdefault(row.email, row.line)
        if earlier != row.line:
            row.reason = f"Duplicate of line {earlier} in this file."
        return row

    def _fill(self, row: ParsedRow) -> None:
        raw_email = self.cell(row, "email")
        if not raw_email:
            raise ValueError("No email address.")
        row.email = self.addresses.normalise(raw_email)
        name = self.cell(row, "name")
        if len(name) > 200:
            raise ValueError("The name is longer than 200 characters.")
        if _CONTROL.search(name):
            raise ValueError("The name contains control characters.")
        row.name = name or None
        row.language = self._language(self.cell(row, "language"))
        row.tags = [self._tag(t) for t in re.split(r"[,;|]", self.cell(row, "tags")) if t.strip()]
        row.consent = self.cell(row, "consent").lower() in YES

    @staticmethod
    def _tag(raw: str) -> str:
        try:
            return tags.clean_name(raw)
        except ValidationError as exc:
            raise ValueError(f"Tag {raw.strip()!r}: {exc.errors['name']}") from None

    def _language(self, raw: str) -> str:
        if not raw:
            return self.default_language
        code = raw.lower().replace("_", "-")
        for candidate in (code, code.split("-")[0], self.by_label.get(code, "")):
            if candidate in self.languages:
                return candidate
        offered = ", ".join(self.languages)
        raise ValueError(f"Unknown language {raw!r} (use one of {offered}).")


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


class ImportWriter:
    """Writes checked rows in bulk: a few statements per chunk, never one per row."""

    def __init__(self, session: Session, options: ImportOptions) -> None:
        self.session = session
        self.options = options
        self.tag_ids: dict[str, int] = {}
        for raw in options.extra_tags:
            self._tag_id(raw)

    def _tag_id(self, name: str) -> int:
        key = name.lower()
        if key not in self.tag_ids:
            self.tag_ids[key] = tags.find_or_create(self.session, name).id
        return self.tag_ids[key]

    def write(self, chunk: list[ParsedRow]) -> dict[str, int]:
        rows = [r for r in chunk if not r.reason]
        emails = [r.email for r in rows]
        suppressed = dict(
            self.session.execute(
                select(Suppression.email, Suppression.reason).where(Suppression.email.in_(emails))
            ).all()
        )
        for row in rows:
            if row.email in suppressed:
                reason = getattr(suppressed[row.email], "value", suppressed[row.email])
                row.reason = f"Suppressed ({reason}): this address receives no mail."
        rows = [r for r in rows if not r.reason]
        existing = dict(
            self.session.execute(
                select(Subscriber.email, Subscriber.id).where(
                    Subscriber.email.in_([r.email for r in rows])
                )
            ).all()
        )
        ids = {**existing, **self._insert_subscribers([r for r in rows if r.email not in existing])}
        changed = self._subscriptions(rows, ids, set(existing.values()))
        self._tags(rows, ids)
        self._consents([r for r in rows if ids[r.email] in changed], ids, changed)
        created = sum(1 for r in rows if r.email not in existing)
        updated = sum(1 for r in rows if r.email in existing and ids[r.email] in changed)
        return {"created": created, "updated": updated}

    def _insert_subscribers(self, rows: list[ParsedRow]) -> dict[str, int]:
        if not rows:
            return {}
        now = utcnow()
        values = [
            {
                "uid": new_uid(),
                "email": r.email,
                "name": r.name,
                "name_search": r.name.lower() if r.name else None,
                "language": r.language,
                "source": "import",
                "created_at": now,
                "updated_at": now,
            }
            for r in rows
        ]
        bulk.insert_rows(self.session, _SUBSCRIBERS, values)
        emails = [r.email for r in rows]
        found = self.session.execute(
            select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_(emails))
        )
        return dict(found.all())

    def _subscriptions(
        self, rows: list[ParsedRow], ids: dict[str, int], existing_ids: set[int]
    ) -> dict[int, list[int]]:
        """Add or confirm subscriptions; returns subscriber id -> lists changed for them."""
        now = utcnow()
        current: dict[tuple[int, int], SubscriptionStatus] = {}
        if existing_ids:
            for sid, lid, status in self.session.execute(
                select(Subscription.subscriber_id, Subscription.list_id, Subscription.status).where(
                    Subscription.subscriber_id.in_(existing_ids),
                    Subscription.list_id.in_(self.options.list_ids),
                )
            ):
                current[(sid, lid)] = SubscriptionStatus(status)
        new_rows: list[dict[str, Any]] = []
        confirm: list[tuple[int, int]] = []
        changed: dict[int, list[int]] = {}
        for row in rows:
            sid = ids[row.email]
            left = []
            for lid in self.options.list_ids:
                status = current.get((sid, lid))
                if status is None:
                    new_rows.append(self._subscription(sid, lid, row.consent, now))
                    changed.setdefault(sid, []).append(lid)
                elif status == SubscriptionStatus.PENDING and row.consent:
                    confirm.append((sid, lid))
                    changed.setdefault(sid, []).append(lid)
                elif status == SubscriptionStatus.UNSUBSCRIBED:
                    left.append(lid)
            if left and sid not in changed:
                row.reason = "Left this list earlier; an import never re-adds someone who left."
        if new_rows:
            bulk.insert_rows(self.session, _SUBSCRIPTIONS, new_rows)
        for sid, lid in confirm:
            self.session.execute(
                update(Subscription)
                .where(Subscription.subscriber_id == sid, Subscription.list_id == lid)
                .values(status=SubscriptionStatus.SUBSCRIBED, subscribed_at=now, updated_at=now)
            )
        return changed

    @staticmethod
    def _subscription(sid: int, lid: int, consent: bool, now) -> dict[str, Any]:
        return {
            "subscriber_id": sid,
            "list_id": lid,
            "status": SubscriptionStatus.SUBSCRIBED if consent else SubscriptionStatus.PENDING,
            "source": "import",
            "created_at": now,
            "updated_at": now,
            "subscribed_at": now if consent else None,
        }

    def _tags(self, rows: list[ParsedRow], ids: dict[str, int]) -> None:
        wanted = {
            (ids[r.email], self._tag_id(t))
            for r in rows
            if not r.reason
            for t in [*r.tags, *self.options.extra_tags]
        }
        if not wanted:
            return
        have = set(
            self.session.execute(
                select(SubscriberTag.subscriber_id, SubscriberTag.tag_id).where(
                    SubscriberTag.subscriber_id.in_({sid for sid, _ in wanted})
                )
            )
        )
        new = [{"subscriber_id": s, "tag_id": t} for s, t in sorted(wanted - have)]
        if new:
            bulk.insert_rows(self.session, _SUBSCRIBER_TAGS, new)

    def _consents(
        self, rows: list[ParsedRow], ids: dict[str, int], changed: dict[int, list[int]]
    ) -> None:
        if not rows:
            return
        now = utcnow()
        who = self.options.editor_email or "the command line"
        bulk.insert_rows(
            self.session,
            _CONSENT_RECORDS,
            [
                {
                    "subscriber_id": ids[r.email],
                    "action": "import",
                    "list_ids": changed[ids[r.email]],
                    "details": {
                        "file": self.options.file_name,
                        "editor": who,
                        "line": r.line,
                        "consent": r.consent,
                    },
                    "source": "import",
                    "form": "import",
                    "consent_text": (
                        f"Imported from {self.options.file_name} by {who}; "
                        + ("the consent column says yes." if r.consent else "no consent given.")
                    ),
                    "consent_version": "",
                    "created_at": now,
                    "confirmed_at": now if r.consent else None,
                }
                for r in rows
            ],
        )
