"""An ASGI app served for real: uvicorn on a free port of 127.0.0.1, in a thread, for as long as a test needs it."""

import contextlib
import socket
import threading
import time


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """Run `app` with uvicorn on a free port of 127.0.0.1 in a thread; yields its URL, stops it afterwards."""
    import uvicorn

    port = free_port()
    # Gradio keeps event streams open; a short graceful timeout closes them instead of waiting for clients.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):  # started within seconds; the loop only bounds a broken start
            if server.started or not thread.is_alive():
                break
            time.sleep(0.05)
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def auth(token: str) -> dict:
    """The REST API's authorization header for an API token."""
    return {"Authorization": f"Bearer {token}"}
