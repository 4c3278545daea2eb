"""The subscribe form (own page, cross-site sidebar post, JSON) and the confirmation link."""

from __future__ import annotations

from flask import current_app, jsonify, make_response, render_template, request
from werkzeug.exceptions import BadRequest

from clarion import i18n, tokens
from clarion.audience import subscribers
from clarion.delivery import welcome
from clarion.errors import RateLimited, ValidationError
from clarion.i18n import N_
from tasks.mail import queue_confirmation
from webapp.errors import wants_json
from webapp.extensions import csrf, db
from webapp.i18n import page_language, use_reader_language
from webapp.public import bp
from webapp.utils import client_ip, int_list, user_agent

HONEYPOT = "website"
ACCEPTED = N_(
    "Thank you. If this address can receive our mail, a message is on its way: open it and "
    "confirm to start receiving the lists you chose."
)


def form_context(values: dict, errors: dict[str, str]) -> dict:
    settings = current_app.config["CLARION"]
    return {
        "lists": subscribers.public_lists(db()),
        "languages": settings.languages,
        "values": values,
        "errors": errors,
        "honeypot": HONEYPOT,
    }


def _read_request() -> tuple[dict, subscribers.SubscribeRequest]:
    if request.is_json:
        data = request.get_json()  # malformed or too deeply nested: 400 saying so
        if not isinstance(data, dict):
            raise BadRequest("Send a JSON object with email, name, language and lists.")
        lists = data.get("lists") or []
        if not isinstance(lists, list):
            raise BadRequest("lists: send a list of list ids, like [1, 2].")
        values = {
            "email": str(data.get("email", "")),
            "name": str(data.get("name", "")),
            "language": str(data.get("language") or page_language()),
            "lists": int_list(lists),
            "source": str(data.get("source", "") or request.args.get("source", "")),
            HONEYPOT: str(data.get(HONEYPOT, "")),
        }
    else:
        values = {
            "email": request.form.get("email", ""),
            "name": request.form.get("name", ""),
            "language": request.form.get("language") or page_language(),
            "lists": int_list(request.form.getlist("lists")),
            "source": request.form.get("source") or request.args.get("source", ""),
            HONEYPOT: request.form.get(HONEYPOT, ""),
        }
    req = subscribers.SubscribeRequest(
        email=values["email"],
        name=values["name"],
        language=values["language"],
        list_ids=values["lists"],
        ip=client_ip(),
        user_agent=user_agent(),
        source=values["source"],
        form="json" if request.is_json else request.form.get("form", "subscribe")[:64],
    )
    return values, req


def _cors(response):
    origin = request.headers.get("Origin", "")
    if origin and origin in current_app.config["CLARION"].embed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept"
        response.headers["Vary"] = "Origin"
    return response


@bp.route("/subscribe", methods=["OPTIONS"])
@csrf.exempt
def subscribe_preflight():
    """CORS preflight for JSON sign-ups from the campaign's own sites."""
    return _cors(make_response("", 204))


@bp.get("/subscribe")
def subscribe_form():
    """The sign-up page."""
    # Preselected: the page's language (?lang=, else the browser's, among the enabled ones).
    values = {"language": page_language(), "lists": [], "source": request.args.get("source", "")}
    return render_template("public/subscribe.html", **form_context(values, {}))


@bp.post("/subscribe")
@csrf.exempt  # blog sidebars post here from other sites; double opt-in is the protection
def subscribe_submit():
    """Take a sign-up from our form, a sidebar form on another site, or JSON."""
    values, req = _read_request()
    if values["language"] in i18n.enabled():
        use_reader_language(values["language"])  # answer in the language just chosen
    if values[HONEYPOT]:
        return _accepted()  # a bot filled the hidden field: pretend all went well
    try:
        outcome = subscribers.subscribe(db(), req)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _rejected(values, exc.errors)
    except RateLimited:
        db().rollback()
        raise
    if outcome.consent_id is not None:
        queue_confirmation(outcome.consent_id)
    return _accepted()


def _accepted():
    if wants_json():
        message = i18n.gettext(ACCEPTED)
        return _cors(make_response(jsonify({"status": "accepted", "message": message}), 202))
    return render_template("public/check_inbox.html", message=i18n.gettext(ACCEPTED))


def _rejected(values: dict, errors: dict[str, str]):
    if wants_json():
        return _cors(make_response(jsonify({"error": "invalid", "fields": errors}), 422))
    return render_template("public/subscribe.html", **form_context(values, errors)), 422


@bp.get("/confirm/<token>")
def confirm_page(token: str):
    """Show what the link confirms; confirming needs a press, so link scanners confirm nothing."""
    consent = subscribers.consent_for_token(db(), token)
    use_reader_language((consent.details or {}).get("language"))
    names = subscribers.list_names(db(), consent.list_ids)
    return render_template("public/confirm.html", token=token, list_names=names)


@bp.post("/confirm/<token>")
def confirm_submit(token: str):
    """Confirm the subscription; the link then stops working. Welcome mails go out after."""
    outcome = subscribers.confirm(db(), token, client_ip())
    db().commit()
    use_reader_language(outcome.subscriber.language)
    welcome.hand_out(outcome.welcomes)
    names = subscribers.list_names(db(), outcome.list_ids)
    prefs = tokens.preferences_token(outcome.subscriber.uid)
    proof = tokens.mailbox_proof(outcome.subscriber.uid)  # lists added next need no new mail
    return render_template(
        "public/confirmed.html", list_names=names, preferences_token=prefs, proof=proof
    )
