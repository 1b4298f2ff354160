"""schemathesis against the app's own OpenAPI schema: no server errors (bounded run).

``make fuzz`` runs the same with many more examples (``FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import ADMIN_TOKEN, Api, RunningWorker
from tests.factories import open_webhook

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))


async def test_no_server_errors(api: Api, worker: RunningWorker, tmp_path: Path) -> None:
    await open_webhook(api)
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{api.base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--seed",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode(errors="replace")
    print(text[-3000:])
    assert process.returncode == 0, text[-6000:]
