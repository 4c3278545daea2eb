"""CSV export of a petition's signatures: owners only, and always recorded in the audit log."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion import audit, editors
from clarion.audience.erasure import ERASED_SIGNATURE
from clarion.inputs import csv_cell
from clarion.models import Editor, Petition, Signature

COLUMNS = ("signed_at", "confirmed_at", "name", "email", "country", "comment", "source")


def export_signatures(
    session: Session, editor: Editor, petition: Petition, ip: str | None = None
) -> str:
    """Every signature as CSV text; Forbidden unless the editor may export."""
    editors.require(editor, "export")
    rows = session.execute(
        select(
            Signature.created_at,
            Signature.confirmed_at,
            Signature.name,
            Signature.email,
            Signature.country,
            Signature.comment,
            Signature.source,
        )
        # Erased signers still count, but are no one to list.
        .where(
            Signature.petition_id == petition.id,
            ~Signature.email.startswith(ERASED_SIGNATURE, autoescape=True),
        )
        .order_by(Signature.id)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        signed, confirmed, *rest = row
        writer.writerow(
            [signed.isoformat(), confirmed.isoformat() if confirmed else ""]
            + [csv_cell(v) for v in rest]
        )
    audit.record(session, editor, "petition.export", f"petition:{petition.id}", ip, rows=len(rows))
    return out.getvalue()
