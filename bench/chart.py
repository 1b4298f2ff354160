"""The chart of one ``make bench`` run: a PNG next to its JSON (``bench/run.py``).

Three panels, from the same phases and drains as the table (``bench/report.py``):

1. throughput by phase (mean per second over the rounds, every round as a dot): raw starts,
   ingest's exact start, ingest through the API (and through the other HTTP stack when measured),
   and the e2e drains — ours, the same-shape reference with no-op activities, the frozen v1;
2. ack latency percentiles (p50, p90, p99, max; ms, log scale) of the open loop at half the
   ingest rate, with no worker and while the worker drains;
3. history events per request by event type (stacked), ours, v1 and the reference.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

from bench.report import ACCEPTANCE_LABELS, Drain, Phase, mean  # noqa: E402

DRAIN_LABELS = {"ours": "e2e: ours", "reference": "e2e: reference (no-op)", "v1": "e2e: v1 frozen"}
PERCENTILES = ("p50_ms", "p90_ms", "p99_ms", "max_ms")


def draw(
    path: Path,
    phases: list[Phase],
    drains: list[Drain],
    ack: Phase | None,
    ack_busy: Phase | None,
    title: str,
    ack_busy_h11: Phase | None = None,
) -> Path:
    """Draw the run's chart to ``path`` (PNG).

    Args:
        path: where to write it.
        phases: the acceptance rounds (``raw``, ``raw-shaped``, ``ingest``, ``ingest-*``).
        drains: the e2e drains.
        ack: the open loop with no worker; ``ack_busy`` the same while the worker drains,
            ``ack_busy_h11`` on the asyncio + h11 API.
        title: the figure's title (mode, machine, load).

    Returns:
        ``path``.
    """
    fig, (rates_ax, ack_ax, events_ax) = plt.subplots(1, 3, figsize=(19, 6))
    fig.suptitle(title, fontsize=10)

    by_kind: dict[str, list[float]] = defaultdict(list)
    for phase in phases:
        by_kind[phase.kind].append(phase.rate)
    for drain in drains:
        by_kind[drain.kind].append(drain.rate)
    labels = {**ACCEPTANCE_LABELS, **DRAIN_LABELS}
    kinds = [k for k in labels if by_kind.get(k)]
    means = [mean(by_kind[k]) for k in kinds]
    colors = ["#dd8452" if k in DRAIN_LABELS else "#4c72b0" for k in kinds]
    rates_ax.barh(range(len(kinds)), means, color=colors)
    for i, kind in enumerate(kinds):
        rates_ax.plot(by_kind[kind], [i] * len(by_kind[kind]), "k.", markersize=4)
        right = max([means[i], *by_kind[kind]])
        rates_ax.text(right, i, f"  {means[i]:.1f}", va="center", fontsize=8)
    rates_ax.set_yticks(range(len(kinds)), [labels[k] for k in kinds], fontsize=8)
    rates_ax.invert_yaxis()
    rates_ax.set_xlabel("requests per second (bar: mean; dots: rounds)")
    rates_ax.set_title("throughput by phase")

    series = [
        (label, measured)
        for label, measured in (
            ("no worker", ack),
            ("worker draining", ack_busy),
            ("worker draining, h11 API", ack_busy_h11),
        )
        if measured is not None
    ]
    width = 0.8 / max(1, len(series))
    for offset, (label, measured) in enumerate(series):
        values = [max(0.1, float(measured.result[p])) for p in PERCENTILES]
        xs = [i + (offset - (len(series) - 1) / 2) * width for i in range(len(PERCENTILES))]
        ack_ax.bar(xs, values, width, label=label)
        for x, v in zip(xs, values, strict=True):
            ack_ax.text(x, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    ack_ax.set_yscale("log")
    ack_ax.set_xticks(range(len(PERCENTILES)), [p.removesuffix("_ms") for p in PERCENTILES])
    ack_ax.set_ylabel("ack latency, ms (log)")
    rate = ack.result.get("target_rate", 0.0) if ack else 0.0
    ack_ax.set_title(f"ack latency at {rate:.0f}/s (half the ingest rate)")
    ack_ax.axhline(250, color="grey", linestyle="--", linewidth=0.8)
    ack_ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)

    shapes = {}
    for kind in ("ours", "v1", "reference"):
        last = [d for d in drains if d.kind == kind]
        if last:
            shapes[kind] = last[-1].events
    names = sorted({n for events in shapes.values() for n in events})
    bottoms = [0.0] * len(shapes)
    cmap = plt.get_cmap("tab20")
    for j, name in enumerate(names):
        values = [events.get(name, 0.0) for events in shapes.values()]
        events_ax.bar(list(shapes), values, bottom=bottoms, label=name.lower(), color=cmap(j % 20))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for i, total in enumerate(bottoms):
        events_ax.text(i, total, f"{total:g}", ha="center", va="bottom", fontsize=9)
    events_ax.set_ylabel("history events per request")
    events_ax.set_title("history events per SUCCESS request")
    if names:
        events_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
