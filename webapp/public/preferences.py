"""The preference centre, reached by a signed link in every mail: lists, language, name, a copy
of one's data by mail, erasure."""

from __future__ import annotations

from flask import current_app, render_template, request

from clarion.audience import disclosure, erasure, subscribers
from clarion.delivery import welcome
from clarion.errors import Suppressed, ValidationError
from clarion.i18n import N_
from clarion.i18n import gettext as _
from tasks.mail import queue_confirmation, send_data_link
from webapp.extensions import db
from webapp.i18n import use_reader_language
from webapp.public import bp
from webapp.utils import client_ip, int_list, user_agent


def _reader(token: str):
    subscriber = subscribers.subscriber_for_preferences(db(), token)
    use_reader_language(subscriber.language)
    return subscriber


def _proof(subscriber) -> str:
    """The mailbox proof this visit carries (from the confirmation page), if still good."""
    proof = request.values.get("proof", "")
    return proof if subscribers.mailbox_proven(subscriber, proof) else ""


def _page(token: str, subscriber, errors=None, message: str = "", status: int = 200, values=None):
    settings = current_app.config["CLARION"]
    choices = subscribers.list_choices(db(), subscriber)
    return (
        render_template(
            "public/preferences.html",
            token=token,
            proof=_proof(subscriber),
            subscriber=subscriber,
            choices=choices,
            languages=settings.languages,
            errors=errors or {},
            message=message,
            values=values,
        ),
        status,
    )


@bp.get("/preferences/<token>")
def preferences(token: str):
    """Lists, language, name; leave everything; join again."""
    subscriber = _reader(token)
    return _page(token, subscriber)


@bp.post("/preferences/<token>")
def preferences_submit(token: str):
    """Save the preference centre, or leave everything."""
    subscriber = _reader(token)
    if request.form.get("action") == "unsubscribe_all":
        subscribers.unsubscribe(db(), subscriber, None, source="preferences", ip=client_ip())
        db().commit()
        return _page(
            token, subscriber, message=_("You have left every list. We will not write again.")
        )
    values = {
        "lists": int_list(request.form.getlist("lists")),
        "name": request.form.get("name", ""),
        "language": request.form.get("language", ""),
    }
    try:
        outcome = subscribers.update_preferences(
            db(),
            subscriber,
            wanted_list_ids=values["lists"],
            name=values["name"],
            language=values["language"],
            ip=client_ip(),
            user_agent=user_agent(),
            mailbox_proven=bool(_proof(subscriber)),
        )
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _page(token, subscriber, errors=exc.errors, status=422, values=values)
    except Suppressed as exc:
        db().rollback()
        return _page(token, subscriber, message=str(exc), status=409, values=values)
    use_reader_language(subscriber.language)  # the page answers in the language just chosen
    if outcome.consent_id is not None:
        queue_confirmation(outcome.consent_id)
    welcome.hand_out(outcome.welcomes)
    return _page(token, subscriber, message=_saved_message(outcome))


def _saved_message(outcome: subscribers.PreferencesOutcome) -> str:
    if outcome.joined:
        return _("Saved. You now receive the lists you added.")
    if outcome.pending and outcome.consent_id is not None:
        return _("Saved. To join again, open the confirmation mail we just sent you.")
    if outcome.pending:
        return _(
            "Saved. We sent a confirmation a few minutes ago; please use that mail or try later."
        )
    return _("Your preferences are saved.")


DATA_SENT = N_(
    "We are sending a link to download your data to the address this mail came to. "
    "It expires in 24 hours."
)


@bp.post("/preferences/<token>/data")
def preferences_data(token: str):
    """Mail the reader a link to everything held about them (never shown on this page)."""
    subscriber = _reader(token)
    if disclosure.may_ask(subscriber):
        send_data_link.delay(subscriber.id)
    return _page(token, subscriber, message=_(DATA_SENT))


@bp.get("/your-data/<token>")
def your_data(token: str):
    """The reader's data as a JSON download, from the expiring link in their mail."""
    subscriber = disclosure.subscriber_for_data_token(db(), token)
    response = current_app.response_class(
        disclosure.reader_data_json(db(), subscriber), mimetype="application/json"
    )
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    response.headers["Cache-Control"] = "no-store, private"
    return response


@bp.get("/preferences/<token>/erase")
def erase_page(token: str):
    """Ask for a press before erasing: a link scanner must never erase anyone."""
    _reader(token)
    return render_template("public/erase.html", token=token)


@bp.post("/preferences/<token>/erase")
def erase(token: str):
    """Erase the reader and everything that names them; only a keyed hash stays."""
    subscriber = _reader(token)
    erasure.erase_self(db(), subscriber)
    db().commit()
    return render_template("public/erased.html")
