"""Provider webhooks with each provider's documented sample payloads (tests/data/webhooks),
signed here with keys and a certificate made for the test, and tampered with. Only the
download of the SNS signing certificate (and the SubscribeURL visit) is replaced: by a fetcher
that serves the test's certificate and records what was asked."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from clarion import jobqueue
from clarion.bounces import inbound
from clarion.bounces.webhooks.sns import string_to_sign
from clarion.config import get_settings, reset_settings
from clarion.models import Bounce, InboundMessage, Suppression
from tests.bouncekit import reader_on
from tests.helpers import refresh, subscription_states

DATA = Path(__file__).resolve().parents[2] / "data" / "webhooks"
TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
MAILGUN_KEY = "key-" + "3ax6xnjp29jd6fds4gc373sgvjxteol0"
POSTMARK = ("postmark", "a-long-webhook-password-0123")


def sample(name: str):
    return json.loads((DATA / name).read_text())


def _certificate(key: rsa.RSAPrivateKey, common_name: str = "sns.amazonaws.com") -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class Fetcher:
    """Serves the test certificate at the documented SigningCertURL; records every URL."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.asked: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        return self.pem if url.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def hooks(settings, monkeypatch, sns_key, sendgrid_key, session, lists):
    """The app with every provider configured, its fetcher, and the queued processing."""
    from webapp import create_app

    public = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("CLARION_SES_TOPIC_ARNS", TOPIC)
    monkeypatch.setenv("CLARION_MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    monkeypatch.setenv("CLARION_SENDGRID_PUBLIC_KEY", base64.b64encode(public).decode())
    monkeypatch.setenv("CLARION_POSTMARK_WEBHOOK_AUTH", ":".join(POSTMARK))
    reset_settings()
    fetcher = Fetcher(_certificate(sns_key))
    app = create_app(get_settings(), TESTING=True, SNS_FETCH=fetcher)
    queued: list[int] = []
    previous = jobqueue.set_backend(lambda name, args, countdown: queued.extend(args))
    for email in (
        "jane@example.com",
        "richard@example.com",
        "alice@example.com",
        "example@test.com",
        "john@example.com",
    ):
        reader_on(session, [lists["alerts"]], email)
    yield app.test_client(), fetcher, queued
    jobqueue.set_backend(previous)


def process(queued: list[int]) -> list[str]:
    outcomes = [inbound.process(i) for i in queued]
    queued.clear()
    return outcomes


def recorded(session) -> dict[str, tuple[str, str]]:
    refresh(session)
    return {
        b.email + ":" + b.classification.value: (b.status_code, b.action)
        for b in session.scalars(select(Bounce))
    }


def nothing_stored(session) -> bool:
    refresh(session)
    return not session.scalar(select(func.count()).select_from(InboundMessage)) and not (
        session.scalar(select(func.count()).select_from(Bounce))
    )


# --- Amazon SES through SNS -----------------------------------------------------------------


def sns_message(key, event: dict | None, version: str = "1", **fields) -> dict:
    message = sample("sns-notification.json")
    if event is not None:
        message["Message"] = json.dumps(event)
    message.update(fields, SignatureVersion=version)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
    message["Signature"] = base64.b64encode(signature).decode()
    return message


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_signed_with_either_version_suppresses_the_reader(
    hooks, session, sns_key, version
):
    client, fetcher, queued = hooks
    body = sns_message(sns_key, sample("ses-bounce.json"), version)
    response = client.post("/webhooks/ses", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert fetcher.asked == [body["SigningCertURL"]]
    assert process(queued) == ["hard jane@example.com: suppressed"]
    assert recorded(session) == {"jane@example.com:hard": ("5.1.1", "suppressed")}
    evidence = session.scalar(select(Bounce.evidence))
    assert json.loads(evidence)["bounce"]["feedbackId"].startswith("00000138111222aa")


def test_ses_complaint_unsubscribes_and_suppresses(hooks, session, sns_key):
    client, _, queued = hooks
    response = client.post("/webhooks/ses", json=sns_message(sns_key, sample("ses-complaint.json")))
    assert response.status_code == 200
    process(queued)
    assert subscription_states(session, "richard@example.com") == {"alerts": "unsubscribed"}
    assert session.scalar(select(Suppression.reason)).value == "complaint"


def test_ses_notification_sent_twice_is_stored_once(hooks, session, sns_key):
    client, _, queued = hooks
    body = sns_message(sns_key, sample("ses-bounce.json"))
    client.post("/webhooks/ses", json=body)
    again = client.post("/webhooks/ses", json=body)
    assert again.get_json()["message"] == "already received"
    assert len(queued) == 1


def test_a_tampered_sns_message_is_refused_and_records_nothing(hooks, session, sns_key):
    client, _, queued = hooks
    body = sns_message(sns_key, sample("ses-complaint.json"))
    event = json.loads(body["Message"])
    event["complaint"]["complainedRecipients"] = [{"emailAddress": "jane@example.com"}]
    body["Message"] = json.dumps(event)
    response = client.post("/webhooks/ses", json=body)
    assert response.status_code == 403 and "signature" in response.get_json()["message"]
    assert queued == [] and nothing_stored(session)


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-west-2.amazonaws.com.attacker.example/cert.pem",
        "https://attacker.example/sns.us-west-2.amazonaws.com/cert.pem",
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-x.pem",
        "https://sns.us-west-2.amazonaws.com/not-a-certificate",
    ],
)
def test_a_certificate_from_anywhere_but_sns_is_never_fetched(hooks, session, sns_key, url):
    client, fetcher, _ = hooks
    body = sns_message(sns_key, sample("ses-bounce.json"), SigningCertURL=url)
    assert client.post("/webhooks/ses", json=body).status_code == 403
    assert fetcher.asked == [] and nothing_stored(session)


def test_a_certificate_not_issued_to_sns_is_refused(hooks, session, sns_key):
    client, fetcher, _ = hooks
    fetcher.pem = _certificate(sns_key, common_name="attacker.example")
    url = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-other.pem"
    body = sns_message(sns_key, sample("ses-bounce.json"), SigningCertURL=url)
    response = client.post("/webhooks/ses", json=body)
    assert response.status_code == 403 and "not issued to Amazon SNS" in response.get_data(True)
    assert nothing_stored(session)


def test_a_topic_not_on_the_allowlist_is_refused(hooks, session, sns_key):
    client, fetcher, _ = hooks
    other = "arn:aws:sns:us-west-2:123456789012:SomeoneElses"
    body = sns_message(sns_key, sample("ses-bounce.json"), TopicArn=other)
    assert client.post("/webhooks/ses", json=body).status_code == 403
    assert fetcher.asked == [] and nothing_stored(session)


def _confirmation(key, **fields) -> dict:
    message = sample("sns-subscription-confirmation.json")
    message.update(fields)
    signature = key.sign(string_to_sign(message), padding.PKCS1v15(), hashes.SHA1())
    message["Signature"] = base64.b64encode(signature).decode()
    return message


def test_a_subscription_confirmation_visits_its_subscribe_url(hooks, session, sns_key):
    client, fetcher, queued = hooks
    body = _confirmation(sns_key)
    response = client.post("/webhooks/ses", json=body)
    assert response.get_json()["message"] == "subscription confirmed"
    assert fetcher.asked == [body["SigningCertURL"], body["SubscribeURL"]]
    assert queued == [] and nothing_stored(session)


def test_a_subscribe_url_off_the_sns_hosts_is_never_visited(hooks, session, sns_key):
    client, fetcher, _ = hooks
    body = _confirmation(sns_key, SubscribeURL="https://attacker.example/?Action=Confirm")
    assert client.post("/webhooks/ses", json=body).status_code == 403
    assert body["SubscribeURL"] not in fetcher.asked


def test_an_unconfigured_provider_is_not_found(client, settings):
    for provider in ("ses", "mailgun", "sendgrid", "postmark"):
        response = client.post(f"/webhooks/{provider}", json={})
        assert response.status_code == 404, provider
    assert client.post("/webhooks/elsewhere", json={}).status_code == 404


# --- Mailgun --------------------------------------------------------------------------------


def mailgun(name: str, timestamp: float | None = None, token: str | None = None) -> dict:
    payload = sample(name)
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    token = token or secrets.token_hex(25)
    digest = hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256)
    payload["signature"] = {"timestamp": stamp, "token": token, "signature": digest.hexdigest()}
    return payload


def test_mailgun_permanent_temporary_and_complaint(hooks, session):
    client, _, queued = hooks
    for name in ("mailgun-failed-temporary.json", "mailgun-failed-permanent.json"):
        assert client.post("/webhooks/mailgun", json=mailgun(name)).status_code == 200
    process(queued)
    assert recorded(session) == {
        "alice@example.com:soft": ("4.2.2", "counted 1 of 3"),
        "alice@example.com:hard": ("5.1.1", "suppressed"),
    }
    complained = mailgun("mailgun-complained.json")
    assert client.post("/webhooks/mailgun", json=complained).status_code == 200
    process(queued)
    assert subscription_states(session, "alice@example.com") == {"alerts": "unsubscribed"}


def test_a_complaint_naming_no_one_is_on_record_and_acts_on_no_one(hooks, session):
    # A redacted complaint: no recipient, and no Message-ID of ours to find the delivery by.
    client, _, queued = hooks
    complained = mailgun("mailgun-complained.json")
    complained["event-data"]["recipient"] = ""
    complained["event-data"]["message"]["headers"].pop("message-id")
    assert client.post("/webhooks/mailgun", json=complained).status_code == 200
    assert process(queued) == ["complaint (no address named): recorded: it names no reader"]
    assert recorded(session) == {":complaint": ("", "recorded: it names no reader")}
    assert session.scalars(select(Suppression)).all() == []
    assert subscription_states(session, "alice@example.com") == {"alerts": "subscribed"}


def test_mailgun_documented_signature_is_refused_with_our_key(hooks, session):
    client, _, _ = hooks
    response = client.post("/webhooks/mailgun", json=sample("mailgun-failed-permanent.json"))
    assert response.status_code == 403 and nothing_stored(session)


def test_mailgun_tampered_stale_and_replayed_are_refused(hooks, session):
    client, _, queued = hooks
    tampered = mailgun("mailgun-failed-permanent.json", token="t" * 50)
    tampered["signature"]["timestamp"] = str(int(tampered["signature"]["timestamp"]) + 1)
    assert client.post("/webhooks/mailgun", json=tampered).status_code == 403
    stale = mailgun("mailgun-failed-permanent.json", timestamp=time.time() - 3600)
    assert client.post("/webhooks/mailgun", json=stale).status_code == 403
    assert nothing_stored(session)
    # The refused request spent nothing: the genuine one with the same token goes through.
    genuine = mailgun("mailgun-failed-permanent.json", token="t" * 50)
    assert client.post("/webhooks/mailgun", json=genuine).status_code == 200
    other_body = copy.deepcopy(genuine)
    other_body["event-data"]["recipient"] = "jane@example.com"
    replay = client.post("/webhooks/mailgun", json=other_body)
    assert replay.status_code == 409
    assert len(queued) == 1


# --- SendGrid -------------------------------------------------------------------------------


def sendgrid(key, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    stamp = timestamp or str(int(time.time()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def test_sendgrid_events_signed_over_timestamp_and_body(hooks, session, sendgrid_key):
    client, _, queued = hooks
    body = (DATA / "sendgrid-events.json").read_bytes()
    response = client.post("/webhooks/sendgrid", data=body, headers=sendgrid(sendgrid_key, body))
    assert response.status_code == 200, response.get_data(as_text=True)
    process(queued)
    assert recorded(session) == {
        "example@test.com:delay": ("", "ignored"),
        "example@test.com:hard": ("5.0.0", "suppressed"),
        "example@test.com:not_a_bounce": ("", "ignored"),
        "example@test.com:complaint": ("", "unsubscribed, suppressed"),
    }


def test_sendgrid_tampered_body_other_timestamp_or_stale_is_refused(hooks, session, sendgrid_key):
    client, _, _ = hooks
    body = (DATA / "sendgrid-events.json").read_bytes()
    headers = sendgrid(sendgrid_key, body)
    tampered = body.replace(b"example@test.com", b"jane@example.com")
    assert client.post("/webhooks/sendgrid", data=tampered, headers=headers).status_code == 403
    moved = dict(headers)
    moved["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(time.time()) + 1)
    assert client.post("/webhooks/sendgrid", data=body, headers=moved).status_code == 403
    stale = sendgrid(sendgrid_key, body, str(int(time.time()) - 3600))
    assert client.post("/webhooks/sendgrid", data=body, headers=stale).status_code == 403
    unsigned = {"Content-Type": "application/json"}
    assert client.post("/webhooks/sendgrid", data=body, headers=unsigned).status_code == 403
    assert nothing_stored(session)


# --- Postmark -------------------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_postmark_bounces_are_read_by_their_words_not_only_their_type(hooks, session):
    client, _, queued = hooks
    documented = sample("postmark-bounce.json")
    assert (
        client.post("/webhooks/postmark", json=documented, headers=basic(*POSTMARK)).status_code
        == 200
    )
    process(queued)
    # "HardBounce" with "Test bounce details": nothing proves a dead mailbox. Counted, kept.
    assert recorded(session) == {"john@example.com:soft": ("", "counted 1 of 3")}
    real = dict(
        documented,
        ID=1,
        Details="smtp;550 5.1.1 The email account that you tried to "
        "reach does not exist. Please try double-checking the recipient's email address",
    )
    assert client.post("/webhooks/postmark", json=real, headers=basic(*POSTMARK)).status_code == 200
    process(queued)
    assert recorded(session)["john@example.com:hard"] == ("5.1.1", "suppressed")


def test_postmark_spam_complaint(hooks, session):
    client, _, queued = hooks
    body = sample("postmark-spam-complaint.json")
    assert client.post("/webhooks/postmark", json=body, headers=basic(*POSTMARK)).status_code == 200
    process(queued)
    assert subscription_states(session, "john@example.com") == {"alerts": "unsubscribed"}
    assert recorded(session) == {"john@example.com:complaint": ("", "unsubscribed, suppressed")}


@pytest.mark.parametrize(
    "headers",
    [basic(POSTMARK[0], "wrong-password-of-some-length"), basic("someone", POSTMARK[1]), {}],
)
def test_postmark_without_the_credentials_is_refused(hooks, session, headers):
    client, _, _ = hooks
    response = client.post(
        "/webhooks/postmark", json=sample("postmark-bounce.json"), headers=headers
    )
    assert response.status_code == 401 and nothing_stored(session)


def test_a_body_that_is_not_json_is_a_bad_request(hooks, session):
    client, _, _ = hooks
    response = client.post("/webhooks/postmark", data=b"{nope", headers=basic(*POSTMARK))
    assert response.status_code == 400 and nothing_stored(session)


def test_a_notification_that_is_not_an_ses_event_records_nothing(hooks, session, sns_key):
    client, _, queued = hooks
    body = sns_message(sns_key, None)  # the documented "Hello world!" notification
    assert client.post("/webhooks/ses", json=body).status_code == 200
    assert process(queued) == ["nothing to record: no reader of ours is named"]
    assert recorded(session) == {}
