"""Alerts: what editors write, and how it is rendered — before anything is sent.

Owns: drafts and scheduling (campaigns), the four kinds and their fields (kinds), Markdown to
safe HTML (markup) and text parts (plaintext), mail templates and MJML (rendering, mjml_check,
remote), the freeze into literal chunks (freeze), hashtag days and their planned alerts, share
links and post lengths (sharing, xcount), images copied or uploaded (media, uploads), the public
archive, the campaign's identity: name, logo, accent, addresses, default sender (identity),
an alert's versions in other languages (versions), why it is in its state (reasons), audiences
by what readers did and saved segments (segments) said in words (segment_words), follow-ups to
the recipients of a sent alert who did not act (followups), personalisation fields such as
{{ first_name | default("friend") }} (personal), and a petition alert's petition: the picker,
the fields it fills, its count and goal through a port actions fills (petition_pick).
May use: the core only (fetch for copying images). Everything that sends sits above it.

Public (all that other packages import from it):
    archive: feed, get_public, page, rendered, sent_on
    campaigns: Draft, EDITABLE, STATE_HELP, audience_count, audience_query, create_draft,
        delete_draft, draft_alert, duplicate, get_alert, language_counts, neutral_recipient,
        page, render_preview, schedule, schedule_at, signed,
        skipped_signers, unschedule, update_draft, version_counts
    followups: FOLLOWABLE, RULES, conditions, create, follow_ups, followable, hashtag_day_of,
        origin_of, petition_of
    freeze: LinkTable, freeze_content, marker, shown, split_markers
    hashtag_days: PLANNED, PlanItem, acted, children, default_subject, inherit, plan
    identity: DEFAULT_ACCENT, MIN_CONTRAST, Identity, contrast_on_white, defaults, load, save,
        site_context
    kinds: KINDS, PROGRESS_FIELDS, STAY_FIELD, KindSpec, spec, stay_fields, validate_fields
    markup: markdown_to_html
    personal: FIELDS, PER_RECIPIENT, reader_values, split_slot
    petition_pick: choices, fill, picked, picked_id, set_progress, with_progress
    media: MIME_TYPES, NAME_RE, copy_image, copy_markdown_images, media_dir, media_url
    reasons: CANCELLED_BY, CANCELLED_FROM_CLI, FEED_CANCELLED, FEED_SCHEDULED, KNOWN, PAUSED_BY,
        PAUSED_BY_ENGINE, SCHEDULE_FAILED, SENDER_FAULT, shown, stored
    segments: TYPES, UNSENT, alert_choices, all_segments, check, condition, create, delete,
        get, inline, page_of, page_range, parse, reader, update, used_by, uses, uses_clicks
    segment_words: describe
    rendering: AlertContent, RenderedMail, SiteContext, render_template_file
    sharing: MAX_SHARE_TEXT, mastodon_share_url, petition_share_links, petition_url
    uploads: markdown_image, store_upload
    versions: NEUTRAL_TYPES, content, default_primary, finished, label, primary_language
"""
