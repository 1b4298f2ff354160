"""Which backend a care flow definition's care flows start in (its ``backend.kind``)."""

from __future__ import annotations

from backends.base import BackendRefusedError, BackendUnavailableError, CareFlowBackend
from careflow.errors import NotFoundError, TransientStoreError
from persistence.store import Store


class BackendRegistry:
    """The configured backends by kind, and the choice per definition.

    Args:
        store: reads the definition (None: every definition uses ``builtin``).
        builtin: the built-in backend (always configured).
        others: configured backends by kind (``temporal``, ``awell``).
    """

    def __init__(
        self,
        store: Store | None,
        builtin: CareFlowBackend,
        others: dict[str, CareFlowBackend] | None = None,
    ) -> None:
        self._store = store
        self._backends: dict[str, CareFlowBackend] = {"builtin": builtin, **(others or {})}

    @classmethod
    def only(cls, backend: CareFlowBackend) -> BackendRegistry:
        """A registry that answers ``backend`` for every definition (tests, fault injection)."""
        return cls(None, backend)

    def kind_of(self, care_flow_definition_id: str | None) -> str:
        """The backend kind of a definition; ``builtin`` for an unknown one (the built-in
        backend then refuses it with ``care_flow_definition_not_found``).

        Raises:
            BackendUnavailableError: the store cannot be read.
        """
        if self._store is None or care_flow_definition_id is None:
            return "builtin"
        try:
            definition = self._store.configuration.get_care_flow_definition(care_flow_definition_id)
        except NotFoundError:
            return "builtin"
        except TransientStoreError as exc:
            raise BackendUnavailableError(str(exc)) from None
        return definition.backend.kind

    def for_definition(self, care_flow_definition_id: str | None) -> CareFlowBackend:
        """The backend for a definition's care flows (and, for awell, its patients).

        Raises:
            BackendRefusedError: ``care_flow_backend_not_configured`` when the definition's
                backend has no settings in this process.
            BackendUnavailableError: the store cannot be read.
        """
        kind = self.kind_of(care_flow_definition_id)
        if self._store is None:
            return self._backends["builtin"]
        backend = self._backends.get(kind)
        if backend is None:
            raise BackendRefusedError(
                "care_flow_backend_not_configured",
                f"the care flow definition's backend {kind} is not configured on this worker",
            )
        return backend
