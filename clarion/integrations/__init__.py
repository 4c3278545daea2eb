"""Integrations: what other programs use — API tokens, idempotent retries, webhooks, health
and metrics.

Owns: API tokens an editor makes for a program, scoped and bounded by the editor's role,
expiring, revocable, rate-limited and audited (apitokens); the answers kept for requests sent
again with the same Idempotency-Key (idempotency); whether the database, Redis and the broker
answer and the schema is current (readiness); the figures Prometheus scrapes (metrics);
the endpoints owners register for events and the signed delivery of the outbox (core
`outbox`) to them, with retries, disabling and resends (webhooks).
May use: delivery (the send rate), tracking (the click buffer), and the core. Nothing below it
uses it; the web layer's /api/v1 and the CLI call it.

Public (all that other packages import from it):
    apitokens: SCOPES, TokenUse, TooManyRequests, authenticate, create_token, revoke, tokens_of
    idempotency: HEADER, Replay, begin, finish, request_hash
    metrics: collect
    readiness: check
    webhooks: EVENTS, LogLine, create_endpoint, deliver, deliver_endpoint, delete_endpoint,
        delivery_log, endpoints, get_endpoint, resend, rotate_secret, sweep, update_endpoint
"""
