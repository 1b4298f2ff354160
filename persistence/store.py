"""The store: the database and its repositories, one instance per process.

``store.configuration`` (identifier systems, care flow definitions, webhooks),
``store.patients`` (the built-in backend's patients and care flows) and
``store.test_payloads`` and ``store.backend_care_flows`` (care flows started in Awell, by
request) share one engine.
"""

from __future__ import annotations

from persistence.database import Database
from persistence.repositories.backend_care_flows import BackendCareFlowRepository
from persistence.repositories.configuration import ConfigurationRepository, new_webhook_id
from persistence.repositories.patients import PatientRepository
from persistence.repositories.test_payloads import TEST_PAYLOADS_KEPT, TestPayloadRepository

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
        self.backend_care_flows = BackendCareFlowRepository(self)
