"""Role checks for admin views: every view names the permission it needs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask_login import current_user, login_required

from clarion import editors
from clarion.models import Editor

ANYONE = "anyone"  # no login: the login form itself
LOGGED_IN = "logged in"  # any active editor, whatever the role

# The permission each admin route needs, by endpoint: what the views' @requires must say.
# tests/integration/test_roles_and_csrf.py walks the URL map against this table as each role:
# a route missing here, or a view guarded otherwise, fails it. Permissions: editors.PERMISSIONS.
ROUTE_PERMISSIONS: dict[str, str] = {
    # privacy.py
    "admin.privacy": "manage_settings",
    # webhooks.py
    "admin.webhooks_index": "manage_settings",
    "admin.webhook_create": "manage_settings",
    "admin.webhook": "manage_settings",
    "admin.webhook_update": "manage_settings",
    "admin.webhook_rotate": "manage_settings",
    "admin.webhook_delete": "manage_settings",
    "admin.webhook_resend": "manage_settings",
    # account.py
    "admin.account": "view",
    "admin.account_save": "view",
    "admin.account_language": "view",
    "admin.account_password": "view",
    "admin.totp_start": "view",
    "admin.totp_confirm": "view",
    "admin.totp_disable": "view",
    # api_tokens.py
    "admin.api_token_create": "view",
    "admin.api_token_revoke": "view",
    # alerts.py
    "admin.alerts": "view",
    "admin.alert_new": "compose",
    "admin.alert_create": "compose",
    "admin.alert": "view",
    "admin.alert_edit": "compose",
    "admin.alert_update": "compose",
    "admin.alert_preview": "view",
    "admin.alert_preview_html": "view",
    "admin.alert_test": "compose",
    "admin.alert_schedule": "send",
    "admin.alert_unschedule": "send",
    "admin.alert_duplicate": "compose",
    "admin.alert_delete": "compose",
    # followups.py, repermission.py
    "admin.alert_follow_up": "compose",
    "admin.stay_new": "compose",
    "admin.stay_create": "compose",
    "admin.audience_count": "view",
    "admin.markdown_image_upload": "compose",
    # composer.py
    "admin.composer_preview": "compose",
    "admin.composer_frame": "compose",
    "admin.composer_test": "compose",
    # segments.py
    "admin.segments": "view",
    "admin.segment_new": "compose",
    "admin.segment_create": "compose",
    "admin.segment": "view",
    "admin.segment_update": "compose",
    "admin.segment_delete": "compose",
    "admin.segment_export": "export",
    # series.py
    "admin.series_index": "view",
    "admin.series_create": "compose",
    "admin.series_page": "view",
    "admin.series_update": "compose",
    "admin.series_step_add": "compose",
    "admin.series_step_update": "compose",
    "admin.series_step_ready": "send",
    "admin.series_step_replace": "compose",
    "admin.series_pause": "send",
    "admin.series_resume": "send",
    # audit_log.py
    "admin.audit_log": "view_audit",
    # auth.py
    "admin.login": ANYONE,
    "admin.login_submit": ANYONE,
    "admin.logout": LOGGED_IN,
    # bounces.py
    "admin.bounce_settings": "manage_settings",
    "admin.bounce_settings_save": "manage_settings",
    # identity_settings.py
    "admin.identity_settings": "manage_settings",
    "admin.identity_settings_save": "manage_settings",
    "admin.notice_dismiss": "send",
    "admin.bounce_evidence": "manage_subscribers",
    # dashboard.py
    "admin.dashboard": "view",
    # editors_admin.py
    "admin.editors": "manage_editors",
    "admin.editor_create": "manage_editors",
    "admin.editor_role": "manage_editors",
    "admin.editor_deactivate": "manage_editors",
    "admin.editor_reactivate": "manage_editors",
    "admin.editor_unlock": "manage_editors",
    "admin.editor_reset_totp": "manage_editors",
    "admin.editor_reset_password": "manage_editors",
    # feeds.py
    "admin.feeds": "view",
    "admin.feed_new": "compose",
    "admin.feed_create": "compose",
    "admin.feed": "view",
    "admin.feed_update": "compose",
    "admin.feed_check": "compose",
    "admin.feed_delete": "compose",
    "admin.feed_cancel_send": "send",
    # hashtag_plans.py
    "admin.alert_plan": "send",
    # jobs.py
    "admin.jobs": "view",
    "admin.import_upload": "manage_subscribers",
    "admin.import_map": "manage_subscribers",
    "admin.import_start": "manage_subscribers",
    "admin.export_start": "export",
    "admin.job": "view",
    "admin.job_progress": "view",
    "admin.import_rejected": "manage_subscribers",
    "admin.export_download": "export",
    # lists.py
    "admin.lists": "view",
    "admin.list_new": "manage_subscribers",
    "admin.list_create": "manage_subscribers",
    "admin.list_edit": "view",
    "admin.list_update": "manage_subscribers",
    # outbox.py
    "admin.outbox": "view",
    "admin.outbox_message": "view",
    "admin.outbox_html": "view",
    # petitions.py
    "admin.petitions_list": "view",
    "admin.petition_new": "compose",
    "admin.petition_create": "compose",
    "admin.petition_edit": "compose",
    "admin.petition_update": "compose",
    "admin.petition_delete": "compose",
    "admin.petition_detail": "view",
    "admin.petition_stats_json": "view",
    "admin.petition_export_csv": "export",
    # sending.py
    "admin.alert_send": "send",
    "admin.alert_pause": "send",
    "admin.alert_resume": "send",
    "admin.alert_cancel": "send",
    "admin.alert_send_unreached": "send",
    "admin.alert_progress": "view",
    "admin.alert_progress_json": "view",
    # stats.py
    "admin.stats_index": "view",
    "admin.alert_stats": "view",
    "admin.alert_stats_json": "view",
    "admin.tracking_settings": "manage_settings",
    "admin.tracking_settings_save": "manage_settings",
    # subscribers.py
    "admin.subscribers": "view",
    "admin.subscribers_tag": "manage_subscribers",
    "admin.subscriber": "view",
    "admin.subscriber_delete": "delete_subscribers",
    "admin.subscriber_lift": "lift_suppression",
    # tags.py
    "admin.tags": "view",
    "admin.tag_create": "manage_subscribers",
    "admin.tag_delete": "manage_subscribers",
}


def current_editor() -> Editor:
    """The logged-in editor."""
    return current_user.editor


def requires(permission: str) -> Callable:
    """Log in first, then refuse with 403 (and change nothing) unless the role allows it."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            editors.require(current_editor(), permission)
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]  # for the walk
        return wrapped

    return decorate
