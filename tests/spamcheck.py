"""SpamAssassin from Debian for tests: local rules only (`spamassassin -L -t`), the rules Debian
ships in /usr/share/spamassassin (no sa-update, no network, no Bayes history)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

STATUS = re.compile(r"score=(-?[\d.]+)\s+required=[\d.]+\s+tests=(.*?)\s+autolearn=", re.S)
# One line of the report: "pts rule name description".
REPORT_LINE = re.compile(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", re.M)


@dataclass(frozen=True)
class Scored:
    """SpamAssassin's verdict on one message."""

    score: float
    rules: dict[str, float]  # each rule that fired and its points
    report: str


def spamassassin(raw: bytes, home: Path) -> Scored:
    """Score `raw` with local tests only; `home` keeps SpamAssassin's per-user files."""
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            "spamassassin",
            "-L",  # local tests only: no DNS blocklists, no Razor or Pyzor
            "-t",  # the message back with the report, whatever the score
            "--cf=use_bayes 0",  # a fresh Bayes database would only add noise
            "--cf=report_safe 0",
        ],
        input=raw,
        capture_output=True,
        check=True,
        timeout=120,
        env={**os.environ, "HOME": str(home)},
    )
    out = done.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
    head = out.split("\n\n", 1)[0]
    status = re.sub(r"\s+", " ", head.split("X-Spam-Status:", 1)[1].split("\nX-", 1)[0])
    match = STATUS.search(status + " autolearn=")
    assert match, status
    report = out.rsplit("Content analysis details:", 1)[-1]
    rules = {name: float(points) for points, name in REPORT_LINE.findall(report)}
    return Scored(float(match.group(1)), rules, report)
