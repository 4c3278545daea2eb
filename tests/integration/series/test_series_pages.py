"""The series pages over HTTP: each refused form comes back with what was typed and says what
to fix; the circular trigger is refused on the page; a step is made ready, the series started
and paused."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from clarion.models import Alert, Series, SeriesStatus, SeriesStep
from tests.helpers import csrf_from, refresh
from tests.integration.series.serieskit import BODY, world


def post(client, path: str, data: dict, page: str):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_refused_forms_keep_what_was_typed_and_the_circular_trigger_is_refused(
    client, session, login
):
    login(client, "editor")
    ml, _readers, petition = world(session)
    form = {"name": "", "list_id": str(ml.id), "trigger": "signed", "petition_id": "",
            "alert_id": "", "goal": '{"type": "signed", "petition": 999}'}  # fmt: skip
    refused = post(client, "/admin/series", form, "/admin/series")
    page = text_of(refused)
    assert refused.status_code == 422
    assert "Give the series a name" in page and "Choose the petition whose signers enter" in page
    assert '{"type": "signed", "petition": 999}</textarea>' in page
    assert re.search(r'value="signed"\s+checked', page)
    assert session.scalars(select(Series)).all() == []

    made = post(client, "/admin/series", {**form, "name": "Journey", "trigger": "joined",
                                          "goal": ""}, "/admin/series")  # fmt: skip
    assert made.status_code == 302
    refresh(session)
    series = session.scalars(select(Series)).one()
    path = f"/admin/series/{series.id}"
    assert made.headers["Location"].endswith(path)

    # A new step: a bad delay and a condition naming no petition come back as typed.
    typed = {"kind": "petition", "adopt_alert_id": "", "delay_hours": "two days",
             "conditions": '{"not": {"type": "signed", "petition": 999}}'}  # fmt: skip
    refused = post(client, f"{path}/steps", typed, path)
    page = text_of(refused)
    assert refused.status_code == 422 and "Give the delay in hours" in page
    assert 'value="two days"' in page and '<option value="petition" selected>' in page
    typed["delay_hours"] = "24"
    refused = post(client, f"{path}/steps", typed, path)
    page = text_of(refused)
    assert refused.status_code == 422 and "999" in page
    assert '{"not": {"type": "signed", "petition": 999}}</textarea>' in page
    assert 'value="24"' in page
    added = post(client, f"{path}/steps", {**typed, "kind": "newsletter", "conditions": ""}, path)
    assert added.status_code == 302
    refresh(session)
    step = session.scalars(select(SeriesStep)).one()
    assert step.delay_seconds == 24 * 3600

    # The step's own form: refused, it opens again with what was typed.
    step_path = f"{path}/steps/{step.id}"
    refused = post(client, step_path, {"delay_hours": "-3", "conditions": "{not json"}, path)
    page = text_of(refused)
    assert refused.status_code == 422 and "Give the delay in hours" in page
    assert f'id="step{step.id}_delay" name="delay_hours" inputmode="decimal" value="-3"' in page
    assert "{not json</textarea>" in page and "<details open>" in page
    saved = post(client, step_path, {"delay_hours": "0.5", "conditions": json_signed(petition)},
                 path)  # fmt: skip
    assert saved.status_code == 302
    refresh(session)
    step = session.get(SeriesStep, step.id)
    assert step.delay_seconds == 1800 and step.conditions == {"type": "signed",
                                                              "petition": petition.id}  # fmt: skip

    # Ready, started; then the series' own alert as its trigger is refused, on the page.
    alert = session.get(Alert, step.alert_id)
    alert.subject, alert.fields = "Step 1", dict(BODY)
    session.commit()
    assert post(client, f"{step_path}/ready", {}, path).status_code == 302
    assert post(client, f"{path}/resume", {}, path).status_code == 302
    circular = {"name": "Journey again", "list_id": str(ml.id), "trigger": "clicked",
                "petition_id": "", "alert_id": str(alert.id), "goal": ""}  # fmt: skip
    refused = post(client, path, circular, path)
    page = text_of(refused)
    assert refused.status_code == 422
    assert f"Alert {alert.id} is sent by this series" in page
    assert 'value="Journey again"' in page
    assert re.search(rf'<option value="{alert.id}"\s+selected>', page)
    refresh(session)
    series = session.get(Series, series.id)
    assert (series.name, series.trigger, series.status) == ("Journey", "joined",
                                                            SeriesStatus.ACTIVE)  # fmt: skip
    assert post(client, f"{path}/pause", {}, path).status_code == 302
    refresh(session)
    assert session.get(Series, series.id).status == SeriesStatus.PAUSED
    assert "Paused: readers wait where they are." in text_of(client.get(path))


def json_signed(petition) -> str:
    return f'{{"type": "signed", "petition": {petition.id}}}'
