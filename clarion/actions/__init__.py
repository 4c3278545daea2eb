"""Actions: what readers do for the campaign — petitions signed, and what alerts achieved.

Owns: petitions (petitions), signing with one signature per address, confirmation and the
reader's prefill (signing), the signature confirmation mail (petition_notices), the signatures'
CSV export (petition_export), and the figures of alerts and petitions (stats).
May use: audience (a signer may subscribe), series (a signature enters its petition's
series), delivery (the confirmation mail), tracking (reader tokens), alerts (Markdown), and the
core.

Public (all that other packages import from it):
    petition_export: export_signatures
    petition_notices: send_signature_confirmation
    petitions: PetitionValues, all_petitions, body_html, by_slug, count_signatures,
        count_unconfirmed, create, delete, get, is_accepting, open_petitions, progress, update,
        validate
    signing: Prefill, SignOutcome, SignRequest, SignStatus, confirm, countries, reader_prefill,
        reader_signed_at, sign, signature_for_token
    stats: alert_hourly, alert_stats, petition_daily, petition_sources
"""
