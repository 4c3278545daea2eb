"""The data model: every table Clarion keeps, as typed SQLAlchemy 2 models."""

from clarion.models.actions import Feed, FeedEntry, Job, Petition, Signature
from clarion.models.alerts import (
    Alert,
    AlertKind,
    AlertRole,
    AlertStatus,
    BatchState,
    Delivery,
    DeliveryBatch,
    DeliveryStatus,
)
from clarion.models.editors import AuditEvent, Editor, Role
from clarion.models.inbound import (
    AdminNotice,
    Bounce,
    BounceClass,
    Click,
    ClickCount,
    InboundMessage,
    Open,
)
from clarion.models.integrations import ApiToken, IdempotentRequest
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
    "AdminNotice",
    "Alert",
    "AlertKind",
    "AlertRole",
    "AlertStatus",
    "ApiToken",
    "AppSetting",
    "AuditEvent",
    "BatchState",
    "Bounce",
    "BounceClass",
    "Click",
    "ClickCount",
    "ConsentRecord",
    "Delivery",
    "DeliveryBatch",
    "DeliveryStatus",
    "Editor",
    "Feed",
    "FeedEntry",
    "IdempotentRequest",
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
