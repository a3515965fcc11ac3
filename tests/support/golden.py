"""Golden values: fixed seeds, and the check of a run's first steps against tests/golden/references.

Regenerate the references on purpose with `PLUMB_UPDATE_GOLDEN=1 pytest tests/golden`; without it
a missing reference fails the test.
"""

import json
import math
import os
import platform
import random
from pathlib import Path

import numpy as np
import pytest
import torch

REFERENCES = Path(__file__).resolve().parents[1] / "golden" / "references"
UPDATE_ENV = "PLUMB_UPDATE_GOLDEN"
GOLDEN_SEED = 1234
# CPU float32 repeats bit for bit run to run at a fixed thread count. With 2 threads instead of 1, reductions are
# ordered differently: the reward run moved by up to 5e-7 absolute, 2e-5 relative; the others did not move at all.
# RTOL 1e-3 leaves 50x room over that, and still fails on every change of a hyper-parameter or formula tried: a 10%
# learning-rate change moves the loss by 1.6e-3 or more and the grad norm by 1e-2 or more by step 2. ATOL covers
# figures that are zero up to rounding (RLOO's loss is about 1e-7 at one PPO epoch per batch; DPO's margins at step 1
# are exactly 0).
RTOL = 1e-3
ATOL = 1e-5


def seed_everything(seed: int = GOLDEN_SEED) -> None:
    """Python, numpy and torch RNGs to `seed` (the trainers reseed from their own `seed` too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def step_series(history: list[dict], keys: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-step values of `keys` from the training logs (the final summary entry, with train_runtime, left out)."""
    steps = [entry for entry in history if "train_runtime" not in entry and "step" in entry]
    series = {key: [float(entry[key]) for entry in steps if key in entry] for key in keys}
    missing = [key for key, values in series.items() if not values]
    assert not missing, f"not logged: {missing}; logged keys: {sorted({k for e in steps for k in e})}"
    return series


def versions() -> dict[str, str]:
    """The versions that decide the figures: torch, transformers, TRL, Python."""
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
    }


def check_golden(name: str, measured: dict[str, list[float]], *, config: dict) -> None:
    """Compare `measured` with references/<name>.json within RTOL/ATOL, or rewrite it when PLUMB_UPDATE_GOLDEN=1."""
    path = REFERENCES / f"{name}.json"
    if os.environ.get(UPDATE_ENV) == "1":
        REFERENCES.mkdir(exist_ok=True)
        record = {"config": config, "versions": versions(), "rtol": RTOL, "atol": ATOL, "values": measured}
        path.write_text(json.dumps(record, indent=2) + "\n")
        return
    if not path.is_file():
        pytest.fail(f"no golden reference {path}: generate it on purpose with {UPDATE_ENV}=1 and commit it")
    reference = json.loads(path.read_text())
    expected = reference["values"]
    problems = []
    for key in sorted(set(expected) | set(measured)):
        want, got = expected.get(key), measured.get(key)
        if want is None or got is None or len(want) != len(got):
            problems.append(f"{key}: expected {want}, got {got}")
            continue
        for step, (w, g) in enumerate(zip(want, got), start=1):
            if not (math.isfinite(g) and abs(g - w) <= ATOL + RTOL * abs(w)):
                problems.append(f"{key} step {step}: expected {w:.6g}, got {g:.6g} (rel. diff {relative(g, w):.2e})")
    if problems:
        made_with = reference.get("versions")
        note = "" if made_with == versions() else f" (reference made with {made_with}, now {versions()})"
        if reference.get("config") != config:
            note += f"; the test's own settings changed too (reference: {reference.get('config')}, now: {config})"
        pytest.fail(
            f"{name}: the first steps moved from the golden values, rtol {RTOL} atol {ATOL}{note}. If the change is "
            f"intended, regenerate with {UPDATE_ENV}=1 and commit the reference.\n  " + "\n  ".join(problems)
        )


def relative(got: float, want: float) -> float:
    """|got - want| relative to |want|."""
    return abs(got - want) / max(abs(want), 1e-12)
