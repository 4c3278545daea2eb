"""Audience: the readers and their lists — how they come, choose and go.

Owns: sign-up and double opt-in, one-click unsubscribe, the preference centre (subscribers),
the confirmation mail (notices), a reader's copy of their data (disclosure) and their erasure
(erasure), mailing lists and their sender identity and welcome mail
(lists), tags, the editors' subscriber directory, CSV imports (imports, import_writer, csvfiles,
bulk) and exports (of a filter, or of a saved segment's readers), re-permission: "stay
subscribed?" mails, the readers' press and removing those who let the deadline pass
(repermission).
May use: series (a confirmation enters the reader into the list's series, the welcome mail's
among them; a list's welcome mail is a one-step series), tracking (the stay token, buffered
clicks), delivery (a list's welcome alert is frozen; the confirmation mail leaves through the
mailer), alerts (kinds, mail templates, segments), and the core. It sits below bounces and
actions, which unsubscribe and subscribe readers through it.

Public (all that other packages import from it):
    csvfiles: ENCODINGS
    disclosure: may_ask, reader_data_json, send_data_link, subscriber_for_data_token
    erasure: ERASED_SIGNATURE, erase_reader, erase_self
    directory: Detail, STATUSES, SubscriberFilter, delete_subscriber, detail, get_subscriber,
        lift_suppression, page, subscribers_page
    exports: download, run_export, start_export, start_segment_export
    imports: FIELDS, ImportOptions, configure, file_preview, preview, run_import, upload
    import_writer: add_confirmed
    lists: all_lists, by_slug, counts, create_list, get_list, set_welcome, update_list,
        welcome_alert_id, welcome_choices
    notices: send_confirmation
    repermission: ACTION, MAX_DAYS, card, counts, create, deadline, remove, remove_due, stay,
        to_remove
    subscribers: PreferencesOutcome, SubscribeRequest, clean_source, confirm, consent_for_token,
        is_suppressed, joined_list_ids, list_choices, list_names, mailbox_proven, public_lists,
        scope_list_ids, subscribe, subscriber_by_uid, subscriber_for_preferences, suppressed_among,
        suppressed_found, suppressed_params, suppressed_select, unsubscribe, unsubscribe_by_token,
        unsubscribe_many, update_preferences
    tags: all_tags, attach, create_tag, delete_tag, detach, find_or_create, get_tag, set_tags,
        tag_counts
"""
