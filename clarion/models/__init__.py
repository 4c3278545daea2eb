"""The data model: every table Clarion keeps, as typed SQLAlchemy 2 models."""

from clarion.models.actions import Feed, FeedEntry, Job, Petition, Signature
from clarion.models.alerts import Alert, AlertKind, AlertStatus, Delivery, DeliveryStatus
from clarion.models.editors import AuditEvent, Editor, Role
from clarion.models.inbound import Bounce, BounceClass, Click, InboundMessage, Open
from clarion.models.subscribers import (
    AppSetting,
    ConsentRecord,
    MailingList,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    Tag,
)

__all__ = [
    "Alert",
    "AlertKind",
    "AlertStatus",
    "AppSetting",
    "AuditEvent",
    "Bounce",
    "BounceClass",
    "Click",
    "ConsentRecord",
    "Delivery",
    "DeliveryStatus",
    "Editor",
    "Feed",
    "FeedEntry",
    "InboundMessage",
    "Job",
    "MailingList",
    "Open",
    "Petition",
    "Role",
    "Signature",
    "Subscriber",
    "SubscriberTag",
    "Subscription",
    "SubscriptionStatus",
    "Suppression",
    "SuppressionReason",
    "Tag",
]
