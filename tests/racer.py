"""Run one of Clarion's periodic polls in its own process, started on a signal, for race tests.

    python -m tests.racer start_due|feeds|remove_unstayed|series

The process configures itself from CLARION_* variables, prints "ready", waits for a line on
stdin, runs the poll, and prints one JSON line: what it claimed and the tasks it published
(recorded, not sent: the race is about claims, not about workers).
"""

from __future__ import annotations

import json
import sys

from clarion import jobqueue
from clarion.audience import repermission
from clarion.delivery import dispatch
from clarion.feeds import poll
from clarion.series import tick


def main(which: str) -> None:
    published: list[list] = []
    jobqueue.set_backend(lambda name, args, countdown: published.append([name, *args]))
    print("ready", flush=True)
    sys.stdin.readline()
    if which == "start_due":
        claimed = dispatch.start_due_alerts()
    elif which == "remove_unstayed":
        claimed = repermission.remove_due()
    elif which == "series":
        claimed = [[alert_id, ids] for alert_id, ids in tick.tick()]
    else:
        claimed = poll.claim_due()
        for feed_id in claimed:
            poll.poll(feed_id)
    print(json.dumps({"claimed": claimed, "published": published}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
