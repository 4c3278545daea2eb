"""Sending from the admin and the CLI, through the shared worker to the mail catcher."""

from __future__ import annotations

from click.testing import CliRunner

from clarion.cli import main
from clarion.models import Alert, AlertStatus, AuditEvent
from tests.helpers import csrf_from, poll_json, refresh
from tests.sendkit import make_alert, make_audience, make_list


def wait_done(client, alert_id: int, timeout: float = 60.0) -> dict:
    return poll_json(client, f"/admin/alerts/{alert_id}/progress.json", "done", timeout)


def test_an_editor_sends_from_the_admin_and_watches_it_finish(
    app, session, login, worker, smtp_sink
):
    client = app.test_client()
    editor = login(client, "editor")
    alerts = make_list(session)
    make_audience(session, alerts, 15)
    alert = make_alert(session, [alerts])

    page = client.get(f"/admin/alerts/{alert.id}/progress").get_data(as_text=True)
    response = client.post(f"/admin/alerts/{alert.id}/send", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/alerts/{alert.id}/progress")

    body = wait_done(client, alert.id)
    assert body["status"] == "sent" and body["counts"]["sent"] == 15 and body["remaining"] == 0
    assert len(smtp_sink.wait_for(15)) == 15
    refresh(session)
    event = session.query(AuditEvent).filter_by(action="alert.send").one()
    assert event.editor_id == editor.id and event.target == f"alert:{alert.id}"

    page = client.get(f"/admin/alerts/{alert.id}/progress").get_data(as_text=True)
    assert 'src="/static/send-progress.js"' in page and "<script>" not in page
    assert f"/admin/alerts/{alert.id}/send-unreached" in page
    assert f"/admin/alerts/{alert.id}/pause" not in page


def test_a_viewer_may_watch_but_not_send(csrf_app, session, login):
    client = csrf_app.test_client()
    login(client, "viewer")
    alerts = make_list(session)
    make_audience(session, alerts, 2)
    alert = make_alert(session, [alerts])
    assert client.get(f"/admin/alerts/{alert.id}/progress.json").status_code == 200
    assert client.post(f"/admin/alerts/{alert.id}/send").status_code == 403
    refresh(session)
    assert session.get(Alert, alert.id).status == AlertStatus.DRAFT


def test_illegal_moves_and_unsendable_drafts_are_refused_with_a_reason(csrf_app, session, login):
    client = csrf_app.test_client()
    login(client, "editor")
    alerts = make_list(session)
    alert = make_alert(session, [alerts])
    json = {"Accept": "application/json"}
    response = client.post(f"/admin/alerts/{alert.id}/pause", headers=json)
    assert response.status_code == 409
    assert "Only an alert that is sending can be paused" in response.get_json()["message"]
    response = client.post(f"/admin/alerts/{alert.id}/send", headers=json)
    assert response.status_code == 422
    assert "no one to send to" in response.get_json()["fields"]["audience"]
    refresh(session)
    assert session.get(Alert, alert.id).frozen_at is None


def test_the_cli_sends_and_waits_until_the_alert_is_sent(settings, session, worker, smtp_sink):
    alerts = make_list(session)
    make_audience(session, alerts, 12)
    alert = make_alert(session, [alerts])
    result = CliRunner().invoke(
        main, ["alerts", "send", str(alert.id), "--wait", "--interval", "0.2"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Sending alert {alert.id}: 1,000 days")
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("sent") and "sent      12" in last and "remaining       0" in last
    assert len(smtp_sink.wait_for(12)) == 12
    again = CliRunner().invoke(main, ["alerts", "send", str(alert.id)])
    assert again.exit_code == 1 and "Only a draft or a scheduled alert can be sent" in again.output
