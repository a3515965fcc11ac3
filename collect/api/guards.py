"""What the app refuses before a route runs: bodies over the size limit, file uploads, and echoing input back.

A plain ASGI middleware, not Starlette's `BaseHTTPMiddleware`, so that a body is counted as it
streams in (a chunked body has no Content-Length to trust) and Gradio's streaming answers pass
through untouched.
"""

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from collect.store.limits import BODY_MAX_BYTES

# Gradio's upload route: the page has no file inputs, so a rater has nothing to upload (and no quota to upload to).
UPLOAD_SUFFIX = "/gradio_api/upload"


class RequestGuard:
    """Refuse a body over `max_bytes` with 413, and Gradio's upload route with 403, before any route reads it."""

    def __init__(self, app, max_bytes: int = BODY_MAX_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].rstrip("/").endswith(UPLOAD_SUFFIX):
            return await _refuse(send, 403, "this server takes no file uploads")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await _refuse(send, 413, f"the request body is over the limit of {self.max_bytes:,} bytes")
        seen = 0
        refused = started = False

        async def counted_receive():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now and tell the route the client left: whatever it does next is not sent.
                    refused = True
                    if not started:
                        await _refuse(send, 413, f"the request body is over the limit of {self.max_bytes:,} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, tracked_send)


async def _refuse(send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """A 422 that says which field is wrong and why, without echoing what was sent (it may be megabytes)."""
    errors = [{key: e.get(key) for key in ("loc", "msg", "type")} for e in error.errors()]
    return JSONResponse({"detail": errors}, status_code=422)
