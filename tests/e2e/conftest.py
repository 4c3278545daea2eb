"""Browser tests reuse the integration fixtures (lists, readers, editors)."""

from tests.integration.conftest import lists, login, make_editor, subscribed  # noqa: F401
