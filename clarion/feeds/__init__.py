"""Feeds: the blog's new posts becoming new-post alerts.

Owns: feeds as editors manage them and their automatic sends (feeds), RSS and Atom reading
(parse), and conditional polling through the safe fetcher (poll).
May use: alerts (drafts, kinds, images), and the core (fetch).

Public (all that other packages import from it):
    feeds: MAX_DELAY_MINUTES, MIN_DELAY_MINUTES, all_feeds, cancel_auto_send, claim_now,
        create_feed, delete_feed, get_feed, pending_sends, recent_entries, update_feed
    poll: NOTES, claim_due, poll
"""
