"""How long `make demo` takes to open its page: first run (new database, no model cache) and a restart.

Run from a checkout whose `make install` has finished (the install itself is timed apart, e.g.
`time make install`). The first run gets an empty `PLUMB_HOME` (no model cache) and a new demo
database; the second reuses that database. Each time is from the command's start to the logins
being printed, and to the page's first HTTP 200 on 127.0.0.1:7860 (which must be free).

    .venv/bin/python bench/demo_startup.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DEMO_DB = Path("outputs/collect-demo")
PAGE = "http://127.0.0.1:7860/"


def time_demo(plumb_home: str) -> dict:
    """Start `make demo`; seconds until the logins are printed and until the page answers; then stop it."""
    started = time.monotonic()
    demo = subprocess.Popen(
        ["make", "demo"],
        env={**os.environ, "PLUMB_HOME": plumb_home},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        logins = None
        for line in demo.stdout:
            if "log in as adam" in line:
                logins = time.monotonic() - started
                break
        if logins is None:
            raise SystemExit("make demo stopped before printing the logins")
        while time.monotonic() - started < 600:
            try:
                if urllib.request.urlopen(PAGE, timeout=5).status == 200:
                    return {"logins_s": round(logins, 1), "page_s": round(time.monotonic() - started, 1)}
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{PAGE} did not answer within 600 s")
    finally:
        demo.terminate()
        demo.wait(timeout=30)


def main() -> int:
    """Time a first run and a restart; print one JSON line with both and the load average."""
    if DEMO_DB.exists():
        raise SystemExit(f"{DEMO_DB} exists: move it away, so the first run starts from nothing")
    with tempfile.TemporaryDirectory() as home:
        first = time_demo(home)
        again = time_demo(home)
    shutil.rmtree(DEMO_DB)
    print(json.dumps({"first_run": first, "restart": again, "load_avg": [round(x, 2) for x in os.getloadavg()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
