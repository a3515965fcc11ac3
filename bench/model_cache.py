"""How long the offline default policy takes to load: first (GGUF dequantized and cached) vs second (safetensors cache).

Each load runs in a fresh Python process against an empty Plumb data directory, so the
first load really converts and the second really reads the cache.

    python bench/model_cache.py [--repeats 3]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# Imports (torch, transformers: ~2 s, the same either way) are timed apart from the load itself.
LOAD = (
    "import time; t0 = time.perf_counter(); import transformers, torch; from plumb.models import load_policy; "
    "from transformers import AutoModelForCausalLM, AutoTokenizer; t1 = time.perf_counter(); "
    "m, tok = load_policy('default'); print(t1 - t0, time.perf_counter() - t1)"
)


def timed_load(home: str) -> tuple[float, float]:
    """(import seconds, load_policy('default') seconds) inside a new interpreter."""
    env = {**os.environ, "PLUMB_HOME": home, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, check=True)
    imports, load = result.stdout.strip().splitlines()[-1].split()
    return float(imports), float(load)


def main() -> None:
    """Print first-load and cached-load times and their ratio, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="cached loads to time (the best is reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        imports, first = timed_load(home)
        cached = [timed_load(home)[1] for _ in range(args.repeats)]
        total = time.perf_counter() - start
    best = min(cached)
    print(f"python imports (torch, transformers):  {imports:6.2f} s  (not counted below)")
    print(f"first load (dequantize GGUF + cache):  {first:6.2f} s")
    print(
        f"cached load (safetensors), best of {args.repeats}: {best:6.2f} s  "
        f"(all: {', '.join(f'{c:.2f}' for c in cached)})"
    )
    print(f"speed-up: {first / best:.1f}x   bench wall time {total:.0f} s")
    print(
        json.dumps(
            {
                "imports_s": round(imports, 3),
                "first_load_s": round(first, 3),
                "cached_load_s": round(best, 3),
                "speedup": round(first / best, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
