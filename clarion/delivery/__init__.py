"""Delivery: getting each alert to each reader once, fast, signed, within the rate limits.

Owns: the send state machine (sending: start, pause, resume, cancel, progress), dispatch of the
ledger and the sweep (dispatch), batches and the batch run (batches, batchrun, ledger), the
message skeleton and DKIM (messages, dkim), SMTP (smtpclient, transport), the send journal
(journal), the recent rate and whether a send is running now (rates), why a send is stalled
and which workers are alive (health), welcome mails, test sends, the transactional mailer
(the same builder, DKIM and VERP as alerts), confirmation mails owed until sent (owed), and the
local mail catcher.
May use: alerts (the content it freezes), tracking (the link map and open pixel it primes),
bounce_classify (what an SMTP refusal means), and the core. It cannot import the bounce policy,
which sits above it: a batch reports refusals through the port in `refusals`, and whoever runs
batches hands in the policy (tasks.delivery passes clarion.bounces.refusals.BatchRefusals).

Public (all that other packages import from it):
    batches: REFILL_TASK, add_batches, refill
    dispatch: dispatch, enqueue_dispatch, finish_if_done, reclaim_stale, send_batch,
        start_due_alerts
    ledger: table
    health: HEARTBEAT_SECONDS, worker_heartbeat
    mailcatcher: get_message, list_messages, start_catcher
    mailer: RETRYABLE, Notice, send
    owed: LATE_TITLE, Owing, deferred, due_confirmations, first_due, note_late, settled, waiting
    rates: batch_seconds, recent_rate, sending_now
    refusals: Finding, RefusalPolicy
    sending: cancel, freeze_alert, get_alert, pause, progress, resume, send_to_unreached, start,
        transition
    testsend: render_for_reader, send_test
    welcome: ACTIVE, hand_out, queue_one
"""
