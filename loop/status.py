"""`plumb loop status RUN_DIR`: where a run stands: each round's stages, done, cut off or to do, with their times.

plumb loop status outputs/loop-demo
"""

import argparse
import time
from pathlib import Path

from loop.manifest import MANIFEST, STAGES, read_manifest, stage_key


def cli(argv: list[str], *, prog: str) -> int:
    """Parse the run directory, then print its status."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="the run directory of `plumb loop run` (its output_dir)")
    run_dir = Path(parser.parse_args(argv).run_dir)
    if not (run_dir / MANIFEST).is_file():
        print(f"{run_dir}: no run here yet (no {MANIFEST}); start one with `plumb loop run --config FILE`")
        return 2
    print(status_text(read_manifest(run_dir)))
    return 0


def stage_state(manifest: dict, key: str) -> str:
    """A stage's state in words: done (with its time), cut off (started, never finished) or to do."""
    entry = manifest["stages"].get(key)
    if entry is None:
        return "to do"
    if entry["state"] == "done":
        return f"done in {entry['seconds']:.0f} s"
    since = time.strftime("%H:%M:%S", time.localtime(entry["started"]))
    return f"started {since} by process {entry.get('pid')}, not finished (running, or cut off: a rerun redoes it)"


def status_text(manifest: dict) -> str:
    """One line per stage of every round that has begun, then the next step."""
    numbers = sorted({int(key.split("/")[0].removeprefix("round-")) for key in manifest["stages"]})
    lines = []
    for number in numbers:
        for stage in STAGES:
            lines.append(f"round {number}  {stage:<10} {stage_state(manifest, stage_key(number, stage))}")
    pending = [line for line in lines if "done in" not in line]
    if manifest.get("stopped"):
        lines.append(f"stopped: {manifest['stopped']}")
    elif not pending:
        lines.append(
            f"rounds 1-{numbers[-1] if numbers else 0} complete: `plumb loop run --config FILE --rounds N` adds rounds"
        )
    return "\n".join(lines)
