"""The store: the database and its repositories, one instance per process.

``store.configuration`` (identifier systems, care flow definitions, webhooks),
``store.patients`` (the built-in backend's patients and care flows) and
``store.test_payloads``, ``store.ui_sessions`` (web-page sessions), ``store.retry_claims`` and
``store.backend_care_flows`` (care flows started in Awell, by request) share one engine.
"""

from __future__ import annotations

from infra.keyring import KeyRing
from persistence.database import Database
from persistence.repositories.backend_care_flows import BackendCareFlowRepository
from persistence.repositories.configuration import ConfigurationRepository, new_webhook_id
from persistence.repositories.patients import PatientRepository
from persistence.repositories.retry_claims import RetryClaimRepository
from persistence.repositories.test_payloads import (
    TEST_PAYLOADS_KEPT,
    TEST_PAYLOADS_MAX_BYTES,
    TestPayloadRepository,
)
from persistence.repositories.ui_sessions import UiSessionRepository

__all__ = ["TEST_PAYLOADS_KEPT", "Store", "new_webhook_id"]


class Store(Database):
    """The database with its repositories.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).
        test_payloads_max_bytes: the byte cap of kept test payloads per webhook.
        key_ring: encrypts the kept test payloads (needed to add or read them).
    """

    def __init__(
        self,
        url: str,
        test_payloads_max_bytes: int = TEST_PAYLOADS_MAX_BYTES,
        key_ring: KeyRing | None = None,
    ) -> None:
        super().__init__(url)
        self.configuration = ConfigurationRepository(self)
        self.patients = PatientRepository(self)
        self.test_payloads = TestPayloadRepository(self, test_payloads_max_bytes, key_ring)
        self.ui_sessions = UiSessionRepository(self)
        self.retry_claims = RetryClaimRepository(self)
        self.backend_care_flows = BackendCareFlowRepository(self)
