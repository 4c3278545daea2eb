"""The clarion command: setup prints the owner's password once; errors are one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from clarion.cli import main
from clarion.models import Alert, Editor, MailingList, Role
from tests.helpers import refresh

ROOT = Path(__file__).resolve().parents[2]


def test_setup_creates_owner_and_demo_once(settings, session):
    runner = CliRunner()
    first = runner.invoke(main, ["setup"])
    assert first.exit_code == 0, first.output
    assert "password" in first.output and "owner@example.org" in first.output
    password = first.output.split("password")[-1].split()[0]
    second = runner.invoke(main, ["setup"])
    assert second.exit_code == 0
    assert "password" not in second.output  # shown only once
    refresh(session)
    owner = session.scalar(select(Editor))
    assert owner.role == Role.OWNER
    from clarion.editors import authenticate

    assert authenticate(session, "owner@example.org", password) is not None
    assert session.scalar(select(func.count()).select_from(MailingList)) == 2
    assert session.scalar(select(func.count()).select_from(Alert)) == 1


def test_editors_create_prints_a_password_once(settings, session):
    result = CliRunner().invoke(main, ["editors", "create", "Ed@Example.org", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    assert "Created viewer ed@example.org" in result.output
    assert "Password (shown once):" in result.output
    again = CliRunner().invoke(main, ["editors", "create", "ed@example.org"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_bad_configuration_stops_with_the_variable_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env.update(CLARION_INSTANCE_DIR=str(tmp_path), CLARION_SMTP_URL="mail.example.org:25")
    result = subprocess.run(
        [sys.executable, "-m", "clarion.cli", "check-config"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "CLARION_SMTP_URL" in result.stderr and "smtp://" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_migrates_an_empty_database(tmp_path, monkeypatch):
    from sqlalchemy import create_engine, inspect

    from clarion.config import reset_settings

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("CLARION_DATABASE_URL", url)
    monkeypatch.setenv("CLARION_INSTANCE_DIR", str(tmp_path))
    reset_settings()
    try:
        result = CliRunner().invoke(main, ["db", "upgrade"])
    finally:
        reset_settings()
    assert result.exit_code == 0, result.output
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {
        "subscribers",
        "lists",
        "subscriptions",
        "consent_records",
        "suppressions",
        "editors",
        "alembic_version",
    } <= tables


def test_segments_are_saved_and_listed_from_the_command_line(settings, session, tmp_path):
    from clarion.models import Petition

    petition = Petition(slug="free-ales", title="Free Ales")
    session.add(petition)
    session.commit()
    good = tmp_path / "signers.json"
    good.write_text(json.dumps({"not": {"type": "signed", "petition": petition.id}}))
    made = CliRunner().invoke(main, ["segments", "create", "Not yet signed", str(good)])
    assert made.exit_code == 0, made.output
    segment_id = int(made.output)
    listed = CliRunner().invoke(main, ["segments", "list"])
    conditions = json.dumps({"not": {"type": "signed", "petition": petition.id}})
    assert listed.output == f"{segment_id}\tNot yet signed\t{conditions}\n"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"any": [{"type": "signed", "petition": 999}]}))
    refused = CliRunner().invoke(main, ["segments", "create", "Broken", str(bad)])
    assert refused.exit_code == 1
    assert "conditions.any[0].petition: Nothing with id 999" in refused.output


def test_a_follow_up_is_written_from_the_command_line(settings, session):
    from datetime import timedelta

    from clarion.db import utcnow
    from clarion.models import Alert, AlertKind, AlertStatus, FollowUp, MailingList

    ml = MailingList(slug="alerts", name="Alerts")
    session.add(ml)
    session.flush()
    started = utcnow() - timedelta(hours=2)
    origin = Alert(kind=AlertKind.NEWSLETTER, name="A", subject="A", fields={"body_md": "x"},
                   audience={"lists": [ml.id]}, status=AlertStatus.SENT, started_at=started,
                   frozen_meta={"audience": {"lists": [ml.id]}})  # fmt: skip
    session.add(origin)
    session.commit()
    args = ["alerts", "follow-up", str(origin.id), "--rule", "click", "--delay-hours", "26"]
    made = CliRunner().invoke(main, args)
    assert made.exit_code == 0, made.output
    session.expire_all()
    link = session.get(FollowUp, int(made.output))
    assert (link.origin_id, link.rule) == (origin.id, "click")
    assert session.get(Alert, link.alert_id).status == AlertStatus.SCHEDULED
    refused = CliRunner().invoke(main, ["alerts", "follow-up", str(origin.id), "--rule", "sign"])
    assert refused.exit_code == 1 and "petition" in refused.output
