"""The README's walkthrough runs verbatim against a running API and worker, with non-default
settings (another data dir and port, the token read from the data dir), and prints the HTTP
status codes it promises (issue 17, point 1)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

from temporalio.client import Client

from examples.care_flow_worker import build_example_worker
from tests.conftest import ADMIN_TOKEN, Api, RunningWorker
from tests.factories import ROOT


def walkthrough_script() -> str:
    """The shell blocks of the README from *Walkthrough* to *Concepts* (the walkthrough, the test
    link, trigger conditions), in order."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Walkthrough") : text.index("## Concepts")]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))


async def test_readme_walkthrough_runs_verbatim(
    api: Api, worker: RunningWorker, tmp_path: Path, temporal_client: Client
) -> None:
    assert shutil.which("curl"), "the walkthrough uses curl"
    data_dir = tmp_path / "elsewhere"
    data_dir.mkdir()
    (data_dir / "admin-token").write_text(ADMIN_TOKEN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREFLOW_", "TEMPORAL_"))}
    env |= {
        "CAREFLOW_DATA_DIR": str(data_dir),
        "CAREFLOW_API_PORT": str(api.settings.careflow_api_port),
        "TEMPORAL_ADDRESS": api.settings.temporal_address,
        "TMPDIR": str(tmp_path),
    }
    # Part 2 of the walkthrough needs the example care-flow worker that `make run` starts.
    async with build_example_worker(temporal_client):
        shell = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            "set -eo pipefail\n" + walkthrough_script(),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output_bytes, _ = await asyncio.wait_for(shell.communicate(), timeout=120)
    output = output_bytes.decode()
    assert shell.returncode == 0, output
    codes = re.findall(r"^HTTP (\d{3})$", output, re.M)
    assert codes == [
        *("201", "201", "201", "200", "202", "200", "200", "200", "200", "200"),  # walkthrough
        *("201", "200", "202", "200"),  # part 2: the temporal backend
        *("201", "200", "200", "200", "200", "200", "200"),  # the test link
        "200",  # GET → edit → PUT
        *("201", "201", "201", "200", "202", "200"),  # conditions, Cal.com (the last IGNORED)
        *("201", "201", "200", "200"),  # conditions, Typeform (test link, preview)
    ], output
    assert '"status":"IGNORED"' in output and "SCHEDULED {'met': True" in output
    assert '"duplicate":true' in output
    assert "SUCCESS care-flow-req_" in output and re.search(r"^COMPLETED$", output, re.M), output
    assert re.search(r"^True$", output, re.M), output  # the second webhook enabled
    assert "du Exemplé" in output  # the care flow's data points
    # Scratch files went to this test's own temp dir, none to a fixed /tmp name.
    assert "/tmp/" not in walkthrough_script()
