"""What the page's Gradio routes check before Gradio sees a request: who may fetch a file, and that an event exists.

Gradio serves every file an event returned (`/gradio_api/file=...`) to anyone signed in, and
answers an unknown event number with a 500. Raters are shown no files at all: the campaign
tab's plots and an export's zip are for reviewers and admins.
"""

import json

from fastapi.responses import JSONResponse

from collect.store import STAFF_ROLES, StoreError, rater_by_name
from collect.store.limits import BODY_MAX_BYTES

FILE_ROUTE = "/gradio_api/file="
EVENT_ROUTES = ("/gradio_api/queue/join", "/gradio_api/run/predict", "/gradio_api/api/predict")


def _cookie(scope, names: tuple[str, ...]) -> str | None:
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, token = part.strip().partition("=")
                if name in names:
                    return token
    return None


class PageGuard:
    """File downloads by role, and events by number, for the Gradio app mounted under this ASGI app."""

    def __init__(self, app, *, sessions, gradio_app):
        self.app, self.sessions, self.gradio_app = app, sessions, gradio_app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if FILE_ROUTE in path:
            if self._role(scope) not in STAFF_ROLES:
                return await _refuse(scope, receive, send, 403, "this file is not yours to download")
        elif scope["method"] == "POST" and path.rstrip("/").endswith(EVENT_ROUTES):
            body, receive = await _read_all(receive)
            if body is None:
                return await _refuse(scope, receive, send, 413, f"the request body is over {BODY_MAX_BYTES:,} bytes")
            fn_index = _fn_index(body)
            if fn_index is not None and fn_index not in self.gradio_app.get_blocks().fns:
                return await _refuse(scope, receive, send, 422, f"no event with fn_index {fn_index}")
        return await self.app(scope, receive, send)

    def _role(self, scope) -> str | None:
        cookie_id = self.gradio_app.cookie_id
        token = _cookie(scope, (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"))
        name = self.gradio_app.tokens.get(token) if token else None
        if name is None:
            return None
        try:
            with self.sessions() as session:
                return rater_by_name(session=session, name=name).role
        except StoreError:
            return None


def _fn_index(body: bytes):
    try:
        value = json.loads(body).get("fn_index")
    except (ValueError, AttributeError):
        return None  # not JSON or not an object: Gradio's own validation answers it
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _read_all(receive):
    """The whole request body (None past `BODY_MAX_BYTES`), and a `receive` that hands it to the app again."""
    chunks, more, size = [], True, 0
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > BODY_MAX_BYTES:
            return None, receive
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _refuse(scope, receive, send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
