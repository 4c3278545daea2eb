"""/api/v1/lists and /api/v1/tags: the audience's lists and tags, as the admin manages them."""

from __future__ import annotations

from clarion.audience import lists, tags
from clarion.models import MailingList
from webapp.api.v1 import schemas as s
from webapp.api.v1.core import Reply, dump, if_match, ip, operation, token_use
from webapp.extensions import db


def _list(ml: MailingList, counts: dict[int, dict[str, int]]) -> dict:
    mine = counts.get(ml.id, {})
    return dump(
        s.ListOut,
        {
            **{k: getattr(ml, k) for k in ("id", "slug", "name", "description", "is_public")},
            **{k: getattr(ml, k) for k in ("from_name", "from_email", "reply_to")},
            "subscribed": mine.get("subscribed", 0),
            "pending": mine.get("pending", 0),
        },
    )


def _one(list_id: int) -> dict:
    return _list(lists.get_list(db(), list_id), lists.counts(db()))


@operation(
    "/lists",
    "GET",
    scope="read",
    tag="lists",
    response=s.ListsOut,
    summary="Every list with its number of readers",
)
def lists_index() -> Reply:
    """All lists, by name."""
    counts = lists.counts(db())
    return Reply({"items": [_list(ml, counts) for ml in lists.all_lists(db())]})


@operation(
    "/lists",
    "POST",
    scope="write",
    permission="manage_subscribers",
    tag="lists",
    body=s.ListIn,
    response=s.ListOut,
    status=201,
    idempotent=True,
    etag=True,
    summary="Create a list",
)
def list_create(body: dict) -> Reply:
    """A new list, checked as the admin form is."""
    made = lists.create_list(db(), body)
    return Reply(_one(made.id), 201)


@operation(
    "/lists/<int:list_id>",
    "GET",
    scope="read",
    tag="lists",
    response=s.ListOut,
    etag=True,
    summary="One list",
)
def list_get(list_id: int) -> Reply:
    """A list with its counts."""
    return Reply(_one(list_id))


@operation(
    "/lists/<int:list_id>",
    "PATCH",
    scope="write",
    permission="manage_subscribers",
    tag="lists",
    body=s.ListUpdate,
    response=s.ListOut,
    etag=True,
    summary="Change a list (fields left out stay as they are)",
)
def list_update(list_id: int, body: dict) -> Reply:
    """Change name, slug, description, visibility or sender."""
    found = lists.get_list(db(), list_id)
    if_match(_one(list_id))
    current = {k: getattr(found, k) or "" for k in s.ListIn().fields}
    lists.update_list(db(), found, {**current, **body})
    db().flush()
    return Reply(_one(list_id))


@operation(
    "/tags",
    "GET",
    scope="read",
    tag="tags",
    response=s.TagsOut,
    summary="Every tag with its number of readers",
)
def tags_index() -> Reply:
    """All tags, by name."""
    counts = tags.tag_counts(db())
    items = [
        {"id": t.id, "name": t.name, "subscribers": counts.get(t.id, 0)}
        for t in tags.all_tags(db())
    ]
    return Reply(dump(s.TagsOut, {"items": items}))


@operation(
    "/tags",
    "POST",
    scope="write",
    permission="manage_subscribers",
    tag="tags",
    body=s.TagIn,
    response=s.TagOut,
    status=201,
    idempotent=True,
    summary="Create a tag",
)
def tag_create(body: dict) -> Reply:
    """A new tag; refused when one of that name exists."""
    tag = tags.create_tag(db(), body["name"])
    return Reply(dump(s.TagOut, {"id": tag.id, "name": tag.name, "subscribers": 0}), 201)


@operation(
    "/tags/<int:tag_id>",
    "DELETE",
    scope="write",
    permission="manage_subscribers",
    tag="tags",
    response=s.Deleted,
    summary="Take a tag off everyone and forget it",
)
def tag_delete(tag_id: int) -> Reply:
    """Delete a tag."""
    tags.delete_tag(db(), token_use().editor, tags.get_tag(db(), tag_id), ip())
    return Reply({"deleted": True})
