"""Confirmation mails cannot be multiplied by address variants or by IPv6 addresses of one /64."""

from __future__ import annotations

from dataclasses import replace

import clarion.audience.subscribers as subs
from clarion import throttle
from clarion.audience.subscribers import SubscribeRequest
from clarion.models import ConsentRecord

VARIANTS = [
    "victim@gmail.com",
    "victim+1@gmail.com",
    "v.ictim@gmail.com",
    "Vic.tim+x@googlemail.com",
]


def test_address_variants_share_one_confirmation_mail(session, lists):
    outcomes = [
        subs.subscribe(session, SubscribeRequest(address, [lists["news"].id]))
        for address in VARIANTS
    ]
    session.commit()
    assert [o.consent_id is not None for o in outcomes] == [True, False, False, False]


def test_address_variants_share_one_daily_budget(session, lists, monkeypatch, settings):
    monkeypatch.setattr(
        subs, "get_settings", lambda: replace(settings, subscribe_limit_per_address="2/day")
    )
    for address in VARIANTS:
        subs.subscribe(session, SubscribeRequest(address, [lists["news"].id], ip="203.0.113.1"))
    session.commit()
    assert session.query(ConsentRecord).count() == 2


def test_ipv6_addresses_of_one_64_share_one_limit(client, session, lists, monkeypatch, settings):
    monkeypatch.setattr(
        subs, "get_settings", lambda: replace(settings, subscribe_limit_per_ip="3/hour")
    )

    def post(i: int, network: str = "2001:db8:1:2"):
        return client.post(
            "/subscribe",
            data={"email": f"r{i}@example.org", "lists": [str(lists["news"].id)]},
            environ_base={"REMOTE_ADDR": f"{network}::{i:x}"},
        ).status_code

    assert [post(i) for i in range(1, 6)] == [200, 200, 200, 429, 429]
    assert post(9, network="2001:db8:1:3") == 200


def test_network_key_groups_ipv6_by_64():
    assert throttle.network_key("2001:db8:1:2::1") == throttle.network_key("2001:db8:1:2:ffff::9")
    assert throttle.network_key("2001:db8:1:2::1") != throttle.network_key("2001:db8:1:3::1")
    assert throttle.network_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert throttle.network_key("203.0.113.5") != throttle.network_key("203.0.113.6")
