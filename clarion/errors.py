"""Domain exceptions; the web layer and the CLI turn them into clear messages."""

from __future__ import annotations


class ClarionError(Exception):
    """Base of every error the domain raises on purpose."""


class ConfigError(ClarionError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, expected: str) -> None:
        self.variable = variable
        self.expected = expected
        super().__init__(f"{variable}: expected {expected}")


class ValidationError(ClarionError):
    """Input that cannot be accepted; `errors` maps each field to what to fix."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class Unsendable(ClarionError):
    """A message the mail server cannot carry (an address only SMTPUTF8 can): retrying the
    same server will not help, and the address may well be valid."""


class InvalidToken(ClarionError):
    """A signed token was forged, altered, expired or already used."""


class NotFound(ClarionError):
    """The thing asked for does not exist (or is not visible to the asker)."""


class Forbidden(ClarionError):
    """The editor's role does not allow this action."""


class InvalidTransition(ClarionError):
    """A state change that the state machine does not allow from the current state."""


class RateLimited(ClarionError):
    """Too many attempts; try again later."""

    def __init__(self, message: str = "Too many attempts. Please try again later.") -> None:
        super().__init__(message)


class Suppressed(ClarionError):
    """The address is on the suppression list."""


class FetchRefused(ClarionError):
    """An outbound fetch was refused or failed: private address, too big, too slow, bad reply."""


class FeedInvalid(ClarionError):
    """A fetched document is not a usable RSS or Atom feed (not a feed, or malformed XML)."""


class WebhookRefused(ClarionError):
    """A provider webhook that is not proven genuine (or not wanted): nothing is recorded."""

    def __init__(self, message: str, status: int = 403) -> None:
        self.status = status
        super().__init__(message)
