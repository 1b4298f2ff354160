"""Mapping overhead benchmark: ``map_payload`` versus jsonpath-ng's ``find`` alone.

For every sample case (``tests/fixtures/samples/cases``) the webhook maps only the case's data
points. After a warm-up, each round times ``map_payload`` and then the bare ``find`` of the same
compiled paths on the same body (the order alternates between rounds, so neither side always runs
on a warmer cache), ``time.perf_counter`` around a batch of calls. The per-case figure is the
median round, in microseconds per data point. The last line is a JSON object:
``{"mapping_us_per_data_point", "find_us_per_data_point", "mapping_overhead_ratio"}`` over all
cases (total time / total data points). Run: ``.venv/bin/python bench/mapping.py`` (or
``make bench``); ``--profile`` prints a cProfile of the mapping loop.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

from careflow.mapping import compile_path, map_payload
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    WebhookFields,
)

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "samples"


def load_cases() -> list[tuple[str, WebhookFields, CareFlowDefinition, Any]]:
    """(name, webhook, definition, body) for every sample case, data points only."""
    cases = []
    for case_file in sorted((SAMPLES / "cases").glob("*.json")):
        case = json.loads(case_file.read_text(encoding="utf-8"))
        body = json.loads((SAMPLES / case["payload"]).read_text(encoding="utf-8"))
        points = case["data_points"]
        webhook = WebhookFields(
            name=case_file.stem,
            care_flow_definition_id="bench",
            data_point_mappings=[
                DataPointMapping(
                    data_point_definition_id=p["id"],
                    path=p["path"],
                    date_format=p.get("date_format"),
                )
                for p in points
            ],
            default_region=case.get("default_region"),
        )
        definition = CareFlowDefinition(
            id="bench",
            title=case_file.stem,
            data_point_definitions=[
                DataPointDefinition(id=p["id"], value_type=p["value_type"], optional=p["optional"])
                for p in points
            ],
        )
        cases.append((case_file.stem, webhook, definition, body))
    return cases


def measure(
    webhook: WebhookFields,
    definition: CareFlowDefinition,
    body: Any,
    rounds: int,
    batch: int,
) -> tuple[float, float]:
    """Median seconds per batch for (map_payload, bare find), interleaved round by round."""
    compiled = [compile_path(m.path) for m in webhook.data_point_mappings]

    def run_mapping() -> float:
        start = time.perf_counter()
        for _ in range(batch):
            map_payload(webhook, definition, body)
        return time.perf_counter() - start

    def run_find() -> float:
        start = time.perf_counter()
        for _ in range(batch):
            for expression in compiled:
                expression.find(body)
        return time.perf_counter() - start

    for _ in range(max(1, batch // 4)):  # warm-up: caches, branch predictors, allocator
        run_mapping()
        run_find()
    mapping_times: list[float] = []
    find_times: list[float] = []
    for round_number in range(rounds):
        if round_number % 2:
            find_times.append(run_find())
            mapping_times.append(run_mapping())
        else:
            mapping_times.append(run_mapping())
            find_times.append(run_find())
    return statistics.median(mapping_times), statistics.median(find_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--batch", type=int, default=150)
    parser.add_argument("--profile", action="store_true", help="cProfile the mapping loop")
    args = parser.parse_args()

    cases = load_cases()
    total_mapping = total_find = 0.0
    total_points = 0
    header = f"{'case':<36} {'points':>6} {'mapping us/dp':>14} {'find us/dp':>11} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for name, webhook, definition, body in cases:
        points = len(definition.data_point_definitions)
        mapping_s, find_s = measure(webhook, definition, body, args.rounds, args.batch)
        mapping_us = mapping_s / args.batch / points * 1e6
        find_us = find_s / args.batch / points * 1e6
        ratio = mapping_us / find_us
        print(f"{name:<36} {points:>6} {mapping_us:>14.2f} {find_us:>11.2f} {ratio:>6.3f}")
        total_mapping += mapping_s / args.batch
        total_find += find_s / args.batch
        total_points += points

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.batch * 5):
            for _name, webhook, definition, body in cases:
                map_payload(webhook, definition, body)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    summary = {
        "mapping_us_per_data_point": round(total_mapping / total_points * 1e6, 3),
        "find_us_per_data_point": round(total_find / total_points * 1e6, 3),
        "mapping_overhead_ratio": round(total_mapping / total_find, 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
