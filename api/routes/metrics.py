"""``GET /metrics``: the API's Prometheus metrics (text format; no PHI in any label)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import ServicesDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        404: {"description": "Served on CAREFLOW_METRICS_PORT instead"},
    },
)
async def metrics(services: ServicesDep) -> Response:
    """The API process's metrics in the Prometheus text format (see ``api/metrics.py``)."""
    if services.settings.careflow_metrics_port:
        body = {
            "errors": [{"code": "not_found", "message": "metrics are on CAREFLOW_METRICS_PORT"}]
        }
        return JSONResponse(body, status_code=404)
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
