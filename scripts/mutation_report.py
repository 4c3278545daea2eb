"""Summarise a mutmut 2.x run from its cache: the score, and each surviving mutant's diff.

Run from the directory that holds .mutmut-cache (scripts/mutate.sh does): NAME MODULE.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter

# "Suspicious" in mutmut 2.x is a mutant the tests killed, only slowly.
KILLED = {"ok_killed", "ok_suspicious"}
COUNTED = {"ok_killed", "bad_survived", "bad_timeout", "ok_suspicious"}


def main(name: str, module: str) -> None:
    """Print the score line and the survivors of one module's run."""
    with sqlite3.connect(".mutmut-cache") as db:
        rows = db.execute("SELECT id, status FROM Mutant ORDER BY id").fetchall()
    statuses = Counter(status for _, status in rows)
    counted = sum(statuses[s] for s in COUNTED)
    killed = sum(statuses[s] for s in KILLED)
    # A timeout is a mutant the tests noticed (they never finished): killed, but shown apart.
    timeouts = statuses["bad_timeout"]
    score = (killed + timeouts) / counted if counted else 0.0
    print(
        f"{name} ({module}): {counted} mutants, {killed} killed, {timeouts} timed out, "
        f"{statuses['bad_survived']} survived ({statuses['ok_suspicious']} of the killed slowly), "
        f"{statuses['skipped']} skipped, {statuses['untested']} untested: score {score:.1%}"
    )
    for mutant_id, status in rows:
        if status == "bad_survived":
            shown = subprocess.run(  # noqa: S603  fixed arguments: mutmut shows a mutant
                [sys.executable, "-m", "mutmut", "show", str(mutant_id)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            diff = [line for line in shown.splitlines() if line[:1] in "+-@"]
            print(f"\n--- mutant {mutant_id} ({status})")
            print("\n".join(line for line in diff if not line.startswith(("---", "+++"))))


if __name__ == "__main__":
    main(*sys.argv[1:3])
