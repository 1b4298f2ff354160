"""The store: the database and its repositories, one instance per process.

``store.configuration`` (identifier systems, care flow definitions, webhooks),
``store.patients`` (the built-in backend's patients and care flows) and
``store.test_payloads``, ``store.ui_sessions`` (web-page sessions) and ``store.retry_claims``
share one engine.
"""

from __future__ import annotations

from persistence.database import Database
from persistence.repositories.configuration import ConfigurationRepository, new_webhook_id
from persistence.repositories.patients import PatientRepository
from persistence.repositories.retry_claims import RetryClaimRepository
from persistence.repositories.test_payloads import TEST_PAYLOADS_KEPT, TestPayloadRepository
from persistence.repositories.ui_sessions import UiSessionRepository

__all__ = ["TEST_PAYLOADS_KEPT", "Store", "new_webhook_id"]


class Store(Database):
    """The database with its repositories.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.configuration = ConfigurationRepository(self)
        self.patients = PatientRepository(self)
        self.test_payloads = TestPayloadRepository(self)
        self.ui_sessions = UiSessionRepository(self)
        self.retry_claims = RetryClaimRepository(self)
