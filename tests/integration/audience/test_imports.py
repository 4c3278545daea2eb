"""CSV import: malformed rows, encodings, duplicates, consent; export; the web flow and the CLI."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from clarion.audience import imports
from clarion.cli import main
from clarion.db import session_factory
from clarion.errors import ValidationError
from clarion.models import (
    AuditEvent,
    ConsentRecord,
    Job,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
)
from tests.helpers import csrf_from, refresh, subscription_states, wait_for_job

HEADER = "email,name,language,tags,consent\n"


@pytest.fixture(scope="module")
def worker(backend, tmp_path_factory):
    """A worker for this module only: left running, it would take the tasks other modules
    enqueue (confirmation mails) while their next test empties the database."""
    from tests.conftest import start_worker

    w = start_worker(backend, tmp_path_factory.mktemp("import-worker") / "worker.log")
    yield w
    w.stop()


def run(data: bytes, list_ids, mapping=None, encoding="auto", **extra) -> Job:
    """Upload, map (guessed from the header unless given) and run an import to the end."""
    session = session_factory()()
    try:
        found = imports.preview(data, encoding)
        options = imports.ImportOptions(
            file_name="people.csv",
            list_ids=list_ids,
            mapping=mapping or found.mapping,
            encoding=found.encoding,
            delimiter=found.delimiter,
            has_header=found.has_header,
            editor_email="owner@example.org",
            **extra,
        )
        job = imports.upload(session, None, data, "people.csv")
        imports.configure(session, job, options)
        session.commit()
        for _ in imports.run_import(session, job):
            session.commit()
        return job
    finally:
        session.close()


def rejected(job: Job) -> dict[int, str]:
    with open(job.result_path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    return {int(r[0]): r[1] for r in rows[1:]}


def test_malformed_rows_are_rejected_with_reasons(session, lists):
    data = (
        HEADER
        + "good@example.org,Good,en,,yes\n"
        + "not-an-address,Bad,en,,yes\n"
        + ",No address,en,,\n"
        + 'broken@example.org,"Unclosed quote,en\n'
        + "swallowed@example.org,Swallowed,en,,\n"
        + "long@example.org,"
        + "x" * 201
        + ",en,,\n"
        + "control@example.org,Bell\x07Name,en,,\n"
        + "lang@example.org,Lang,xx,,\n"
        + "\n"
        + 'tag@example.org,Tag,en,"ok, bad!tag",\n'
        + "extra@example.org,Extra,en,,yes,unexpected,cells\n"
        + "label@example.org,Label,Беларуская,,\n"
    ).encode()
    job = run(data, [lists["alerts"].id])
    reasons = rejected(job)
    assert (job.total, job.created, job.rejected) == (11, 4, 7)
    assert "Invalid email address 'not-an-address'" in reasons[3]
    assert reasons[4] == "No email address."
    assert reasons[5] == 'Malformed CSV on line 5: a quote (") is opened and never closed.'
    assert "longer than 200" in reasons[7]
    assert "control characters" in reasons[8]
    assert "Unknown language 'xx'" in reasons[9]
    assert 11 in reasons and "Use up to 64" in reasons[11]
    refresh(session)
    assert subscription_states(session, "good@example.org") == {"alerts": "subscribed"}
    assert subscription_states(session, "extra@example.org") == {"alerts": "subscribed"}
    label = session.scalar(select(Subscriber).where(Subscriber.email == "label@example.org"))
    assert label.language == "be"


NAMES = "Алесь Бяляцкі", "Марыя Калеснікава"
WESTERN = "José García", "Jürgen Müßig"


@pytest.mark.parametrize(
    ("encoding", "names", "bom"),
    [
        ("utf-8", NAMES + WESTERN, b""),
        ("utf-8", NAMES, b"\xef\xbb\xbf"),
        ("cp1251", NAMES, b""),
        ("cp1252", WESTERN, b""),
        ("utf-16", NAMES + WESTERN, b""),
    ],
)
def test_encodings_are_detected(session, lists, encoding, names, bom):
    text = "email;name\n" + "".join(f"p{i}@example.org;{n}\n" for i, n in enumerate(names))
    job = run(bom + text.encode(encoding), [lists["news"].id])
    assert job.created == len(names) and job.rejected == 0
    refresh(session)
    stored = list(session.scalars(select(Subscriber.name).order_by(Subscriber.email)))
    assert stored == list(names)
    searchable = session.scalar(
        select(Subscriber.name_search).where(Subscriber.email == "p0@example.org")
    )
    assert searchable == names[0].lower()


def test_undecidable_and_binary_files_are_refused_clearly():
    with pytest.raises(ValidationError) as caught:
        imports.preview("email,price\na@example.org,10 €\n".encode("cp1252"))
    assert (
        "Windows-1251" in caught.value.errors["encoding"]
        and "CSV UTF-8" in caught.value.errors["encoding"]
    )
    with pytest.raises(ValidationError) as caught:
        imports.preview(b"PK\x03\x04\x00\x00binary spreadsheet")
    assert "zero bytes" in caught.value.errors["file"]
    with pytest.raises(ValidationError) as caught:
        imports.preview("email,name\na@example.org,Jürgen\n".encode("cp1252"), "utf-8")
    assert "byte 0xfc on line 2" in caught.value.errors["encoding"]
    with pytest.raises(ValidationError) as caught:
        imports.preview(b"  \n")
    assert "empty" in caught.value.errors["file"]


def test_duplicates_in_the_file_and_against_the_database(session, lists, subscribed):
    alerts, news, staff = lists["alerts"].id, lists["news"].id, lists["staff"].id
    left = Subscriber(email="left@example.org")
    pending = Subscriber(email="pending@example.org", name="Known name")
    session.add_all(
        [
            left,
            pending,
            Suppression(email="bounced@example.org", reason=SuppressionReason.HARD_BOUNCE),
        ]
    )
    session.flush()
    session.add_all(
        [
            Subscription(
                subscriber_id=left.id, list_id=alerts, status=SubscriptionStatus.UNSUBSCRIBED
            ),
            Subscription(
                subscriber_id=pending.id, list_id=alerts, status=SubscriptionStatus.PENDING
            ),
        ]
    )
    session.commit()
    data = (
        HEADER
        + "New@Example.org,New,,,yes\n"
        + "new@example.ORG,Again,,,yes\n"
        + "reader@example.org,Reader,,,yes\n"
        + "left@example.org,Left,,,yes\n"
        + "pending@example.org,Other name,,,yes\n"
        + "bounced@example.org,Bounced,,,yes\n"
    ).encode()
    job = run(data, [alerts])
    reasons = rejected(job)
    assert reasons == {
        3: "Duplicate of line 2 in this file.",
        5: "Left this list earlier; an import never re-adds someone who left.",
        7: "Suppressed (hard bounce): this address receives no mail.",
    }
    assert (job.created, job.updated, job.rejected) == (1, 1, 3)  # reader: already subscribed
    assert subscription_states(session, "new@example.org") == {"alerts": "subscribed"}
    assert subscription_states(session, "left@example.org") == {"alerts": "unsubscribed"}
    assert subscription_states(session, "pending@example.org") == {"alerts": "subscribed"}
    assert (
        session.scalar(select(Subscriber.name).where(Subscriber.email == "pending@example.org"))
        == "Known name"
    )
    assert (
        session.scalar(select(Subscriber).where(Subscriber.email == "bounced@example.org")) is None
    )
    # Running the same file again changes nothing and records no new consent.
    records = len(session.scalars(select(ConsentRecord)).all())
    again = run(data, [alerts])
    assert (again.created, again.updated) == (0, 0)
    refresh(session)
    assert len(session.scalars(select(ConsentRecord)).all()) == records
    assert staff and news


def test_only_a_consent_column_saying_yes_confirms(session, lists):
    data = (
        HEADER
        + "yes@example.org,,,,Yes\nda@example.org,,,,да\n"
        + "no@example.org,,,,no\nblank@example.org,,,,\n"
    ).encode()
    job = run(data, [lists["alerts"].id, lists["news"].id])
    assert job.created == 4
    assert subscription_states(session, "yes@example.org") == {
        "alerts": "subscribed",
        "news": "subscribed",
    }
    assert subscription_states(session, "da@example.org")["news"] == "subscribed"
    assert subscription_states(session, "no@example.org") == {
        "alerts": "pending",
        "news": "pending",
    }
    assert subscription_states(session, "blank@example.org")["alerts"] == "pending"
    records = {
        r.details["line"]: r
        for r in session.scalars(select(ConsentRecord).where(ConsentRecord.action == "import"))
    }
    assert records[2].confirmed_at is not None and records[4].confirmed_at is None
    assert (
        records[2].details["file"] == "people.csv"
        and records[2].details["editor"] == "owner@example.org"
    )
    assert (
        "people.csv" in records[2].consent_text and "owner@example.org" in records[2].consent_text
    )
    assert sorted(records[2].list_ids) == sorted([lists["alerts"].id, lists["news"].id])


def test_without_a_mapped_consent_column_everyone_is_pending(session, lists):
    data = (HEADER + "a@example.org,,,,yes\n").encode()
    run(data, [lists["alerts"].id], mapping={0: "email"})
    assert subscription_states(session, "a@example.org") == {"alerts": "pending"}


def test_tags_from_a_column_and_for_everyone(session, lists):
    data = (HEADER + "a@example.org,,,minsk; Hrodna,\nb@example.org,,,,\n").encode()
    run(data, [lists["alerts"].id], extra_tags=["import-2030"])
    refresh(session)
    pairs = session.execute(
        select(Subscriber.email, Tag.name)
        .join(SubscriberTag, SubscriberTag.subscriber_id == Subscriber.id)
        .join(Tag, Tag.id == SubscriberTag.tag_id)
    ).all()
    assert sorted(pairs) == [
        ("a@example.org", "Hrodna"),
        ("a@example.org", "import-2030"),
        ("a@example.org", "minsk"),
        ("b@example.org", "import-2030"),
    ]


def test_an_interrupted_import_resumes_after_its_last_chunk(session, lists, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK", 3)
    rows = "".join(f"p{i}@example.org,,,,yes\n" for i in range(10)) + "bad,,,,\n" * 2
    data = (HEADER + rows).encode()
    s = session_factory()()
    found = imports.preview(data)
    options = imports.ImportOptions(
        "people.csv", [lists["alerts"].id], found.mapping, found.encoding, found.delimiter
    )
    job = imports.upload(s, None, data, "people.csv")
    imports.configure(s, job, options)
    s.commit()
    job_id = job.id
    steps = imports.run_import(s, job)
    next(steps)
    s.commit()
    next(steps)  # the first chunk is written and committed
    s.commit()
    next(steps)  # the second chunk is written but the worker dies before committing
    s.rollback()
    s.close()
    s = session_factory()()
    job = s.get(Job, job_id)
    assert job.processed == 3
    for _ in imports.run_import(s, job):
        s.commit()
    assert (job.processed, job.created, job.rejected, job.status) == (12, 10, 2, "done")
    assert set(rejected(job)) == {12, 13}
    s.close()
    refresh(session)
    assert len(session.scalars(select(ConsentRecord)).all()) == 10


def test_web_import_maps_columns_runs_in_a_worker_and_offers_rejected_rows(
    client, session, login, lists, worker
):
    login(client, "editor")
    token = csrf_from(client.get("/admin/jobs").get_data(as_text=True))
    body = (
        "E-Mail;Имя;Согласие\nann@example.org;Ann;yes\n"
        "bad-address;Bad;yes\nbob@example.org;Bob;no\n"
    )
    response = client.post(
        "/admin/imports",
        data={"csrf_token": token, "file": (io.BytesIO(body.encode("cp1251")), "list.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    assert "Cyrillic (Windows-1251)" in page and "Имя" in page
    assert '<option value="email" selected>' in page and '<option value="consent" selected>' in page
    missing = client.post(
        map_url,
        data={
            "csrf_token": token,
            "encoding": "cp1251",
            "delimiter": ";",
            "has_header": "on",
            "col-0": "email",
        },
    )
    assert missing.status_code == 422 and "at least one list" in missing.get_data(as_text=True)
    started = client.post(
        map_url,
        data={
            "csrf_token": token,
            "encoding": "cp1251",
            "delimiter": ";",
            "has_header": "on",
            "col-0": "email",
            "col-1": "name",
            "col-2": "consent",
            "lists": str(lists["alerts"].id),
        },
    )
    assert started.status_code == 302
    uid = started.headers["Location"].rsplit("/", 1)[1]
    progress = wait_for_job(client, uid)
    assert progress["status"] == "done", progress
    assert (progress["created"], progress["rejected"], progress["percent"]) == (2, 1, 100)
    job_page = client.get(f"/admin/jobs/{uid}").get_data(as_text=True)
    assert 'data-progress-url="/admin/jobs/' in job_page and "<progress" in job_page
    download = client.get(f"/admin/imports/{uid}/rejected.csv")
    assert download.status_code == 200 and "bad-address" in download.get_data(as_text=True)
    assert "Invalid email address" in download.get_data(as_text=True)
    assert subscription_states(session, "ann@example.org") == {"alerts": "subscribed"}
    assert subscription_states(session, "bob@example.org") == {"alerts": "pending"}


def test_owner_exports_in_a_worker_and_both_steps_are_audited(
    client, session, login, subscribed, worker
):
    session.add(Subscriber(email="other@example.org", name="Other"))
    session.commit()
    login(client, "owner")
    token = csrf_from(client.get("/admin/jobs").get_data(as_text=True))
    response = client.post("/admin/exports", data={"csrf_token": token})
    uid = response.headers["Location"].rsplit("/", 1)[1]
    assert wait_for_job(client, uid)["status"] == "done"
    download = client.get(f"/admin/exports/{uid}/download")
    assert download.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["email", "name", "language", "created_at", "lists", "tags"]
    by_email = {r[0]: r for r in rows[1:]}
    assert by_email["reader@example.org"][4] == "alerts:subscribed;news:subscribed"
    assert by_email["other@example.org"][4] == ""
    refresh(session)
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("subscribers.export%"))
    ).all()
    assert sorted(actions) == ["subscribers.export", "subscribers.export_download"]


def test_cli_import_with_progress_bar_and_consent_rules(settings, session, lists, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(HEADER + "a@example.org,A,,,yes\nb@example.org,B,,,no\nbad,,,,\n")
    runner = CliRunner()
    result = runner.invoke(main, ["subscribers", "import", str(path), "--list", "alerts"])
    assert result.exit_code == 0, result.output
    assert "consent column is ignored without --confirmed" in result.output
    assert "Importing people.csv" in result.output
    assert "2 new, 0 updated, 1 rejected of 3 rows." in result.output
    assert subscription_states(session, "a@example.org") == {"alerts": "pending"}
    result = runner.invoke(
        main,
        ["subscribers", "import", str(path), "--list", "alerts", "--list", "news", "--confirmed"],
    )
    assert result.exit_code == 0, result.output
    assert subscription_states(session, "a@example.org") == {
        "alerts": "subscribed",
        "news": "subscribed",
    }
    assert subscription_states(session, "b@example.org") == {"alerts": "pending", "news": "pending"}
    record = session.scalars(
        select(ConsentRecord).where(ConsentRecord.confirmed_at.is_not(None))
    ).first()
    assert record.details["editor"].startswith("command line (")


def test_cli_import_refusals_say_what_to_do(settings, lists, tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("email\na@example.org\n")
    runner = CliRunner()
    result = runner.invoke(
        main, ["subscribers", "import", str(path), "--list", "alerts", "--confirmed"]
    )
    assert result.exit_code == 1 and "--confirmed needs a consent column" in result.output
    result = runner.invoke(main, ["subscribers", "import", str(path), "--list", "nope"])
    assert (
        result.exit_code == 1
        and "No list with the slug 'nope'" in result.output
        and "alerts" in result.output
    )


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"]
)
def test_subscriber_export_never_writes_a_formula(session, make_editor, name):
    from clarion.audience import exports
    from clarion.audience.directory import SubscriberFilter

    owner, _ = make_editor("owner")
    session.add(Subscriber(email="=cmd@example.org", name=name))
    session.commit()
    job = exports.start_export(session, owner, SubscriberFilter(), None)
    for _ in exports.run_export(session, job):
        pass
    with open(job.result_path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][:2] == ["'=cmd@example.org", "'" + name]
