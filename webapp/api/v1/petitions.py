"""/api/v1/petitions: create, change, read with the live count, signatures by keyset pages and
as CSV, and signing from another site under the sign page's own rules."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from clarion.actions import petition_export, petitions, signing
from clarion.models import Petition, Signature
from clarion.paging import keyset_page
from webapp.api.v1 import schemas as s
from webapp.api.v1.core import Reply, dump, if_match, ip, operation, token_use
from webapp.extensions import db
from webapp.utils import user_agent

TAG = "petitions"
# Deadlines without a zone are UTC here: a program has no "editor's zone" in mind.
ZONE = "UTC"


def _petition(petition: Petition) -> dict:
    shown = petitions.progress(db(), petition)
    keys = (
        "id",
        "slug",
        "title",
        "body_md",
        "target",
        "goal",
        "raise_goal",
        "deadline",
        "require_confirmation",
        "is_open",
    )
    return dump(
        s.PetitionOut,
        {
            **{k: getattr(petition, k) for k in keys},
            "count": petitions.count_signatures(db(), petition.id),
            "displayed_goal": shown.goal,
            "accepting": shown.accepting,
        },
    )


def _as_form(values: dict) -> dict:
    # The domain reads the admin form's values: flags as booleans, numbers as text.
    return {**values, "goal": str(values.get("goal") or "")}


@operation(
    "/petitions",
    "GET",
    scope="read",
    tag=TAG,
    response=s.PetitionsOut,
    summary="Every petition with its live count",
)
def petitions_index() -> Reply:
    """All petitions."""
    return Reply({"items": [_petition(p) for p in petitions.all_petitions(db())]})


@operation(
    "/petitions",
    "POST",
    scope="write",
    permission="compose",
    tag=TAG,
    body=s.PetitionIn,
    response=s.PetitionOut,
    status=201,
    idempotent=True,
    etag=True,
    summary="Create a petition",
)
def petition_create(body: dict) -> Reply:
    """A new petition, checked as the admin form is."""
    checked = petitions.validate(db(), _as_form(body), ZONE)
    petition = petitions.create(db(), token_use().editor, checked, ip())
    return Reply(_petition(petition), 201)


@operation(
    "/petitions/<int:petition_id>",
    "GET",
    scope="read",
    tag=TAG,
    response=s.PetitionOut,
    etag=True,
    summary="One petition with its live count",
)
def petition_get(petition_id: int) -> Reply:
    """A petition, its count and the goal as shown."""
    return Reply(_petition(petitions.get(db(), petition_id)))


@operation(
    "/petitions/<int:petition_id>",
    "PATCH",
    scope="write",
    permission="compose",
    tag=TAG,
    body=s.PetitionUpdate,
    response=s.PetitionOut,
    etag=True,
    summary="Change a petition (fields left out stay as they are)",
)
def petition_update(petition_id: int, body: dict) -> Reply:
    """Nothing is saved unless every field is right."""
    petition = petitions.get(db(), petition_id)
    if_match(_petition(petition))
    current = {k: getattr(petition, k) for k in s.PetitionIn().fields}
    current["deadline"] = petition.deadline.isoformat() if petition.deadline else ""
    checked = petitions.validate(db(), _as_form({**current, **body}), ZONE, petition.id)
    petitions.update(db(), token_use().editor, petition, checked, ip())
    db().flush()
    return Reply(_petition(petition))


@operation(
    "/petitions/<int:petition_id>/signatures",
    "GET",
    scope="read",
    permission="export",
    tag=TAG,
    query=s.PageQuery,
    response=s.SignaturePage,
    summary="Signatures newest first, by keyset pages (owners: they hold addresses)",
)
def signatures_index(petition_id: int, query: dict) -> Reply:
    """A page of signatures."""
    petition = petitions.get(db(), petition_id)
    page = keyset_page(
        db(),
        select(Signature).where(Signature.petition_id == petition.id),
        Signature.id,
        lambda sig: sig.id,
        after=query.get("after"),
        before=query.get("before"),
    )
    items = dump(s.SignatureOut, page.items, many=True)
    return Reply({"items": items, "after": page.after, "before": page.before})


@operation(
    "/petitions/<int:petition_id>/signatures.csv",
    "GET",
    scope="read",
    permission="export",
    tag=TAG,
    content="text/csv",
    writes=True,
    summary="Every signature as CSV (owners; recorded in the audit log)",
)
def signatures_csv(petition_id: int):
    """The admin's export."""
    petition = petitions.get(db(), petition_id)
    body = petition_export.export_signatures(db(), token_use().editor, petition, ip())
    db().commit()
    response = current_app.response_class(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="signatures-{petition.slug}.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@operation(
    "/petitions/<int:petition_id>/signatures",
    "POST",
    scope="write",
    permission="compose",
    tag=TAG,
    body=s.SignIn,
    response=s.SignOut,
    status=202,
    idempotent=True,
    summary="Add a signature collected on another site: the sign page's rules (one per "
    "address, confirmation by mail when the petition asks for it)",
)
def signature_add(petition_id: int, body: dict) -> Reply:
    """Sign as the public page signs; the mails leave after the commit."""
    petition = petitions.get(db(), petition_id)
    req = signing.SignRequest(
        name=body["name"],
        email=body["email"],
        country=body["country"],
        comment=body["comment"],
        source=body["source"],
        list_ids=body["lists"],
        user_agent=user_agent(),
        language=body["language"],
    )
    outcome = signing.sign(db(), petition, req)
    after = []
    if outcome.confirm_signature_id is not None:
        from tasks.petitions import queue_signature_confirmation

        signature_id = outcome.confirm_signature_id
        after.append(lambda: queue_signature_confirmation(signature_id))
    if outcome.list_consent_id is not None:
        from tasks.mail import queue_confirmation

        consent_id = outcome.list_consent_id
        after.append(lambda: queue_confirmation(consent_id))
    status = outcome.status.value
    if status == "already_signed":
        status = "signed"
    return Reply({"status": status, "lists_pending": list(outcome.lists_pending)}, 202, after)
