"""Schemathesis against the live API with a real token: no 5xx, and every answer (status,
content type, headers, body) as the OpenAPI document says. Bounded to stay within ~2 minutes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clarion.models import Alert, AlertKind, Petition, Subscriber, Suppression, SuppressionReason

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


@pytest.fixture
def seeded(session, lists):
    """Something at ids 1 and 2 of each kind, so that examples reach real rows too."""
    session.add_all(
        [
            Subscriber(email="one@example.org", name="One"),
            Subscriber(email="two@example.org"),
            Alert(
                kind=AlertKind.NEWSLETTER,
                name="A",
                subject="A",
                fields={"body_md": "Hi"},
                audience={"lists": [lists["alerts"].id]},
            ),
            Petition(slug="free-them", title="Free them", goal=100),
            Suppression(email="gone@example.org", reason=SuppressionReason.COMPLAINT),
        ]
    )
    session.commit()


def test_the_live_api_keeps_to_its_openapi_document(
    live_server, seeded, make_token, monkeypatch, tmp_path
):
    from clarion.config import reset_settings

    monkeypatch.setenv("CLARION_API_RATE_LIMIT", "1000000/minute")
    reset_settings()
    secret = make_token("owner", ("read", "write", "send", "import"))
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{live_server}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {secret}",
            "--checks",
            CHECKS,
            "--max-examples",
            "8",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "17",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
        ],
        cwd=tmp_path,  # its cache of examples and crashes stays out of the repository
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
