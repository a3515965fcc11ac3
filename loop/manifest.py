"""The run's manifest: which stage of which round is done, with what it produced, as one JSON file.

A stage is recorded as started before it runs and as done only after every output is in
place, and the file is replaced atomically, so a process killed at any moment leaves
either the old manifest or the new one. A stage found started but not done was cut off:
it is run again from its start (stages that write the store resume from what is stored).
"""

import json
import os
import time
from pathlib import Path

from plumb.paths import write_whole

MANIFEST = "manifest.json"
STAGES = ("candidates", "judgments", "export", "reward", "align", "eval")


def stage_key(round_number: int, stage: str) -> str:
    """The manifest's name of a stage of a round, e.g. `round-1/reward` (also its folder under the run)."""
    return f"round-{round_number}/{stage}"


def read_manifest(run_dir: str | os.PathLike) -> dict:
    """The manifest of a run directory (an empty one when the run has not started)."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return {"stages": {}, "stopped": None}
    return json.loads(path.read_text())


def write_manifest(run_dir: str | os.PathLike, manifest: dict) -> None:
    """Replace the manifest in one step (write a temporary file, then rename it over the old one)."""
    write_whole(Path(run_dir) / MANIFEST, json.dumps(manifest, indent=2))


def is_done(manifest: dict, key: str) -> bool:
    """Whether the stage finished (a stage only started, then killed, is not done)."""
    return manifest["stages"].get(key, {}).get("state") == "done"


def mark_started(run_dir, manifest: dict, key: str) -> None:
    """Record that a stage starts now (and how often it was started before)."""
    entry = manifest["stages"].get(key, {})
    manifest["stages"][key] = {
        "state": "running",
        "started": time.time(),
        "attempts": entry.get("attempts", 0) + 1,
        "pid": os.getpid(),
    }
    write_manifest(run_dir, manifest)


def mark_done(run_dir, manifest: dict, key: str, result: dict) -> None:
    """Record that a stage finished, with its result and its wall time."""
    entry = manifest["stages"][key]
    entry.update(state="done", finished=time.time(), seconds=round(time.time() - entry["started"], 1), result=result)
    write_manifest(run_dir, manifest)


def result_of(manifest: dict, round_number: int, stage: str) -> dict | None:
    """What a finished stage returned, or None when it has not finished."""
    entry = manifest["stages"].get(stage_key(round_number, stage), {})
    return entry.get("result") if entry.get("state") == "done" else None
