"""How long a rater waits for the next task after a judgment, in the Gradio app and over the REST API.

Starts `plumb collect serve` (page + API in one process) on 127.0.0.1 over a fresh SQLite
campaign, then one rater judges `--judgments` tasks through the page's own event (Gradio
call + result stream, as the browser does; the answer carries the next task) and another
through the REST API (submit, then next: the baseline). Prints p50/p95/max for both, their
ratio and the share of page judgments whose next task came within 300 ms.

    python bench/app_latency.py [--judgments 100]
"""

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from collect_load import child_server, free_port, seed  # noqa: E402  (the load bench's campaign, next to this file)

from collect.app.keys import button_label  # noqa: E402
from collect.store import create_rater, make_engine, session_factory  # noqa: E402

PASSWORD = "bench-password-1"


@contextlib.contextmanager
def serve(url: str):
    """`plumb collect serve` for campaign `load` on 127.0.0.1 in a child process; yields its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "plumb",
        "collect",
        "serve",
        "--campaign",
        "load",
        "--db",
        url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    base = f"http://127.0.0.1:{port}"
    with child_server(command, f"{base}/docs", timeout=120, quiet=True):
        yield base


def page_latencies(base: str, judgments: int) -> list[float]:
    """Seconds from a judgment sent through the page's event until the next task is back, per judgment."""
    from gradio_client import Client

    client = Client(base + "/", auth=("bench", PASSWORD), verbose=False)
    try:
        client.predict(api_name="/show_task")
        latencies = []
        for _ in range(judgments):
            started = time.perf_counter()
            client.predict(button_label("4", "Tie"), "", [], api_name="/judge")
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        client.close()


def api_latencies(base: str, token: str, judgments: int) -> list[float]:
    """Seconds for submit + next over the REST API, per judgment (the baseline without Gradio)."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        task = client.get("/api/campaigns/load/next").json()
        for _ in range(judgments):
            started = time.perf_counter()
            client.post("/api/campaigns/load/judgments", json={"assignment_id": task["assignment_id"], "choice": "Tie"})
            task = client.get("/api/campaigns/load/next").json()
            latencies.append(time.perf_counter() - started)
    return latencies


def summary(latencies: list[float]) -> dict:
    """p50, p95 and max in milliseconds, and the share under 300 ms."""
    ms = np.array(latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "under_300ms": round(float((ms < 300).mean()), 3),
    }


def main() -> None:
    """Seed, serve, measure both paths, print the table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--judgments", type=int, default=100, help="judgments per path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.sqlite"
        (token,) = seed(url, raters=1, tasks=args.judgments + 5)
        engine = make_engine(url)
        with session_factory(engine).begin() as session:
            create_rater(session=session, name="bench", role="rater", password=PASSWORD)
        engine.dispose()
        with serve(url) as base:
            api = summary(api_latencies(base, token, args.judgments))
            page = summary(page_latencies(base, args.judgments))
    print(f"{'path':<28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'< 300 ms':>9}")
    for name, figures in (("REST submit + next", api), ("page judge -> next task", page)):
        print(
            f"{name:<28} {figures['p50_ms']:>8} {figures['p95_ms']:>8} {figures['max_ms']:>8} "
            f"{figures['under_300ms']:>9.0%}"
        )
    ratio = page["p50_ms"] / api["p50_ms"]
    print(f"page / REST at p50: {ratio:.1f}x")
    print(json.dumps({"judgments": args.judgments, "page": page, "rest": api, "p50_ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
