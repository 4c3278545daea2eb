"""Retrying a task without writing a reader's address into the worker's log.

Celery logs why a task will run again, and the reason is often a mail server's reply, which
quotes the recipient ("450 4.2.0 <reader@example.org>: Greylisted"). The reason is kept, the
addresses in it are not: the reader's page in the admin says who, the log need not.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from celery import Task

from clarion.addresses import without_addresses
from clarion.db import session_scope, utcnow
from clarion.delivery import owed

log = logging.getLogger(__name__)

LONGEST_WAIT = 3600  # seconds between two tries, at most
MAIL_FIRST_WAIT = 30  # seconds before a transactional mail's first retry


class Deferred(Exception):
    """Why a task runs again later: the original failure's kind and text, without addresses."""


def retry_later(task: Task, failure: BaseException, first_wait: int) -> NoReturn:
    """Run `task` again after `first_wait` seconds, doubling each time; raise it outside an
    `except` block, or Celery chains the original failure, address and all, to what it logs."""
    reason = Deferred(f"{type(failure).__name__}: {without_addresses(str(failure))}")
    raise task.retry(exc=reason, countdown=next_wait(task, first_wait))


def retry_owed_mail(
    task: Task, failure: BaseException, model: type[owed.Owing], record_id: int
) -> NoReturn:
    """`retry_later` for a confirmation mail owed by `model`'s record `record_id`: the mail
    sweep is first told to wait for this task's next try (clarion.delivery.owed)."""
    with session_scope() as session:
        owed.deferred(session, model, record_id, next_wait(task, MAIL_FIRST_WAIT), utcnow())
    retry_later(task, failure, MAIL_FIRST_WAIT)


def next_wait(task: Task, first_wait: int) -> int:
    """Seconds before `task` runs again: `first_wait`, doubled at each retry, an hour at most."""
    return min(first_wait * 2**task.request.retries, LONGEST_WAIT)


def queue_or_leave_to_sweep(task: Task, record_id: int) -> None:
    """Publish `task` for a record whose work a sweep finds anyway (a confirmation mail owed):
    after the commit the request has succeeded, so a broker away costs a wait, not an error."""
    try:
        task.delay(record_id)
    except Exception as exc:  # Redis or the broker is away; the kind and text name no reader
        log.warning("%s(%s) waits for its sweep: %s", task.name, record_id, exc)
