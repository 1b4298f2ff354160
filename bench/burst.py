"""``make bench``'s burst: deliveries sent at once by ``make chaos``'s retrying sender, and the
seconds to each first answer (``burst_first_answer_p50_s``)."""

from __future__ import annotations

import time

from bench.chaos_report import percentile
from bench.chaos_scenarios import Delivery, Sender, send_burst
from bench.phases import FHIR_BODY
from bench.stack import Stack


async def run_burst(stack: Stack, webhook_id: str, count: int) -> dict[str, float]:
    """``count`` deliveries at once, by ``make chaos``'s retrying sender (lean client), to every
    API process; no worker runs (the answer never waits for one).

    Returns:
        ``first_answer_p50_s`` / ``first_answer_p99_s`` (seconds from each delivery's first
        attempt to its first answer of any kind), ``acknowledged``, ``requests``, ``attempts``,
        ``all_acknowledged_after_s``.
    """
    # The FHIR sample the bench's webhook maps (make chaos's own bodies would be REJECTED here),
    # each delivery with its own webhook-id.
    body = FHIR_BODY.read_bytes()
    run = f"bench-burst-{time.time_ns()}"
    deliveries = [Delivery(seq, f"{run}-{seq:05d}", "", body) for seq in range(count)]
    urls = [f"{url}/hooks/{webhook_id}" for url in stack.api_urls]
    started = time.monotonic()
    sender = Sender([], urls[0], started, mirrors=urls[1:], lean=True)
    await send_burst(sender, deliveries)
    first = [d.first_answer_s for d in deliveries if d.first_answer_s is not None]
    acked = [d.acknowledged_s for d in deliveries if d.acknowledged_s is not None]
    return {
        "requests": count,
        "acknowledged": len(acked),
        "attempts": sum(d.attempts for d in deliveries),
        "first_answer_p50_s": percentile(first, 0.5) or 0.0,
        "first_answer_p99_s": percentile(first, 0.99) or 0.0,
        "all_acknowledged_after_s": round(max(acked), 2) if acked else 0.0,
    }
