"""/api/v1: the REST API for programs, authenticated by API tokens (clarion.integrations)."""

from webapp.api.v1 import (  # noqa: F401
    alerts,
    audience,
    petitions,
    subscribers,
    suppressions,
    webhooks,
)
from webapp.api.v1.core import OPERATIONS, bp

__all__ = ["OPERATIONS", "bp"]
