"""Run a component with the payload codec turned off: the baseline of ``codec_e2e_ratio``.

Bench only. ``python bench/codec_off.py worker.py`` or ``python bench/codec_off.py -m uvicorn
api.main:app ...``: the plain pydantic data converter replaces the encrypting one before the
component is imported, so its Temporal client sends and reads payloads in the clear.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    from temporalio.contrib.pydantic import pydantic_data_converter

    import infra.codec

    infra.codec.data_converter = lambda ring: pydantic_data_converter  # type: ignore[assignment]
    infra.codec.EncryptionCodec = type(None)  # type: ignore[assignment,misc]  # worker.py's check
    args = sys.argv[1:]
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
