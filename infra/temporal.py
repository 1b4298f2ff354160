"""Temporal names and helpers in one place: workflow and activity names, search attribute keys
and the client connection. Request ids (workflow ids) are made in ``careflow.request_ids``."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor, TLSConfig
from temporalio.common import SearchAttributeKey
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from careflow.settings import Settings
from infra import codec
from infra.keyring import KeyRing

WORKFLOW_TYPE = "WebhookRequestWorkflow"
VALIDATE_REQUEST = "validate_request"
RESOLVE_PATIENT = "resolve_patient"
START_CARE_FLOW = "start_care_flow"
FIND_ACTIVE_CARE_FLOW = "find_active_care_flow"
# Tried once as local activities before they are scheduled (``workflows/request.py``).
LOCAL_FIRST_ACTIVITIES = frozenset({RESOLVE_PATIENT, FIND_ACTIVE_CARE_FLOW, START_CARE_FLOW})
CLAIM_DEBOUNCE_WINDOW = "claim_debounce_window"
DEBOUNCE_WORKFLOW_TYPE = "DebounceWindowWorkflow"
DEBOUNCE_RELEASE_SIGNAL = "release"
MEMO_DEBOUNCE_HOLDER = "request_id"
STATUS_QUERY = "status"
ALERT_WORKFLOW_TYPE = "AlertWorkflow"
SEND_ALERT = "send_alert"
PATIENT_RESOLUTION_WORKFLOW = "PatientResolutionWorkflow"
RESOLVE_REMOTE_PATIENT = "resolve_remote_patient"

SA_WEBHOOK_ID = SearchAttributeKey.for_keyword("WebhookId")
SA_CARE_FLOW_DEFINITION_ID = SearchAttributeKey.for_keyword("CareFlowDefinitionId")
SA_REQUEST_STATUS = SearchAttributeKey.for_keyword("RequestStatus")
SA_PATIENT_ID = SearchAttributeKey.for_keyword("PatientId")
SA_CARE_FLOW_ID = SearchAttributeKey.for_keyword("CareFlowId")
SA_IS_TEST = SearchAttributeKey.for_bool("IsTest")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (
    SA_WEBHOOK_ID,
    SA_CARE_FLOW_DEFINITION_ID,
    SA_REQUEST_STATUS,
    SA_PATIENT_ID,
    SA_CARE_FLOW_ID,
    SA_IS_TEST,
)

MEMO_STATE = "state"


def key_ring(settings: Settings) -> KeyRing:
    """The settings' key ring (``CAREFLOW_ENCRYPTION_KEYS``, else the data dir's key file).

    Raises:
        KeyRingError: the setting is malformed.
    """
    return KeyRing.parse(settings.encryption_keys())


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic data converter with the AES-GCM payload codec on the settings' key ring."""
    return codec.data_converter(key_ring(settings))


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """Connect to Temporal with the encrypting pydantic data converter (API, worker and tests).

    Args:
        settings: address, namespace and credentials.
        lazy: connect on first use (the API starts even while Temporal is down and answers 503).
        interceptors: client interceptors (the tracing interceptor when tracing is on).
        runtime: the SDK runtime (the worker's, with its Prometheus endpoint); default runtime
            when None.

    Raises:
        RuntimeError: when the server cannot be reached (not lazy).
    """
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    elif settings.temporal_api_key:
        tls = True
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls,
        data_converter=data_converter(settings),
        lazy=lazy,
        interceptors=interceptors,
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the contract's search attributes on the client's namespace (idempotent).

    Returns:
        The names that were added (empty when all existed).
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    wanted = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in SEARCH_ATTRIBUTES
    }
    missing = {name: kind for name, kind in wanted.items() if name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


async def set_retention(client: Client, days: int) -> None:
    """Set the namespace's workflow execution retention (request logs and dedupe last as long)."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.namespace.v1 import NamespaceConfig
    from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest

    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=client.namespace,
            config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=days * 86400)),
        )
    )
