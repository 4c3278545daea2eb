"""Tracking: what readers do with a mail — the click path, opens, and reader tokens.

Owns: following `/r/<token>/<n>` from Redis alone (clicks, linkmap), buffering clicks and opens
in a Redis stream and flushing them to the database (eventstream), open tracking, off by
default (opens), and the expiring reader tokens minted on a click (readers).
May use: the core only. Delivery primes the link map and adds the pixel, so it sits above this.

Public (all that other packages import from it):
    clicks: follow
    eventstream: backlog, flush
    linkmap: links_of, remember_deliveries, remember_links
    opens: PIXEL_GIF, is_enabled, pixel_url, record_open, set_enabled, with_open_pixel
    readers: read_reader_token, read_stay_token
"""
