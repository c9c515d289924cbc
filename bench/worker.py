"""The subprocess side of every measurement.

    python -m bench.worker SPEC.json RESULT.json        run bench.peers.<peer>.<fn>(params)
    python -m bench.worker run RESULT.json SCRIPT ARGS  run a stage script as `python SCRIPT ARGS`

Each run is a fresh process, so its peak RSS (VmHWM) is the tool's own, runtime included.
It imports only the one peer adapter the spec names (and that adapter imports only its tool).
A failing worker writes a one-line reason into its result ({"error": ...}) and exits with
status 3; its traceback goes to the run's log for whoever wants it.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

from bench.common import peak_rss_self

FAILED = 3


def _write(result_path: str, result: dict) -> None:
    tmp = result_path + ".partial"
    Path(tmp).write_text(json.dumps(result))
    os.replace(tmp, result_path)


def reason(e: BaseException) -> str:
    """One line: the exception's type and its first line."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def worker_main(spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        fn = getattr(importlib.import_module(f"bench.peers.{spec['peer']}"), spec["fn"])
        result = fn(spec["params"])
    except Exception as e:  # noqa: BLE001  (any failure of a tool is a row in the table, not a crash)
        traceback.print_exc()
        _write(result_path, {"error": reason(e), "vm_hwm_bytes": peak_rss_self()})
        return FAILED
    result["vm_hwm_bytes"] = peak_rss_self()
    result["loaded"] = loaded()
    _write(result_path, result)
    return 0


def loaded() -> list[str]:
    """Which of storytok and its runtime this process imported: a peer's must be none (its RSS and
    its time would carry storytok's), which the checks verify."""
    return sorted({m.split(".")[0] for m in sys.modules} & {"storytok", "numba", "llvmlite"})


def run_script_main(result_path: str, script: str, args: list[str]) -> int:
    """Run a stage script as `python script args` would, then record this process's peak RSS."""
    import runpy
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        _write(result_path, {"error": reason(e), "vm_hwm_bytes": peak_rss_self()})
        return FAILED
    if code == 0:
        _write(result_path, {"vm_hwm_bytes": peak_rss_self()})
    return code


def main(argv: list[str]) -> int:
    if len(argv) == 2:
        return worker_main(argv[0], argv[1])
    if len(argv) >= 3 and argv[0] == "run":
        return run_script_main(argv[1], argv[2], argv[3:])
    print("usage: python -m bench.worker SPEC.json RESULT.json | run RESULT.json SCRIPT [ARGS...]\n"
          "(internal: the harness is stages/bench.py)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
