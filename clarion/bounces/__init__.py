"""Bounces: what comes back — reports arriving by every path, and the one policy they meet.

Owns: the policy (policy: hard, soft, complaint, sender fault; notices) and its numbers owners
edit (numbers), the policy as the delivery engine's refusal port (refusals), durable inbound
storage and processing (inbound), the bounce server (server), IMAP polling (imap), and provider
webhooks (webhooks/). Classification itself is the pure library clarion.bounce_classify.
May use: audience (a complaint unsubscribes), delivery (a sender fault pauses the alert; the
port's Finding), bounce_classify, and the core.

Public (all that other packages import from it):
    imap: poll, poll_once
    inbound: MAX_ATTEMPTS, enqueue, process, sweep
    numbers: LIMITS, load_policy, save_policy
    policy: NOTICE_TITLE, dismiss_notice, open_notices, soft_standing
    refusals: BatchRefusals
    server: start_bounce_server
    webhooks.receive: receive
"""
