"""A fake OpenAI-compatible chat server that fails on purpose and records what it was sent.

It answers `echo <last message>` (whole, or streamed as SSE chunks word by word), and on
request: 503s before it succeeds, 401 without the right key, 404 for an unknown model, all
with OpenAI-style error bodies. Each request's headers, body and arrival time are kept, and
how many requests were being answered at once. Serve it with `tests.support.serving.serving(stub.app())`.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class OpenAIStub:
    """Scripted behaviour and the record of one stub server.

    `failures` requests answer 503 (with `retry_after`, when set) before any succeeds;
    `api_key`, when set, is the only key accepted; `models`, when set, are the only models
    served. `hold_until` keeps the first answers back until that many requests are in flight
    (for at most `hold_seconds`), so overlapping requests are seen rather than hoped for;
    `delays` holds back the answer to a message by its text, so answers finish out of order.
    """

    failures: int = 0
    retry_after: str | None = None
    api_key: str | None = None
    models: tuple[str, ...] | None = None
    hold_until: int = 1
    hold_seconds: float = 5.0
    delays: dict[str, float] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)  # {"headers", "body", "time"} in arrival order
    in_flight: int = 0
    max_in_flight: int = 0
    released: bool = False  # once hold_until requests overlapped (or hold_seconds passed), nothing waits

    def app(self):
        """The FastAPI app serving `POST /v1/chat/completions`."""
        from fastapi import FastAPI, Request

        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.requests.append({"headers": dict(request.headers), "body": body, "time": time.monotonic()})
            return self._refusal(request, body) or await self._answer(body)

        return app

    def _refusal(self, request, body: dict):
        """An error response when the script says this request fails, else None."""
        from fastapi.responses import JSONResponse

        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse(_error("Incorrect API key provided.", "invalid_api_key"), status_code=401)
        if self.models is not None and body.get("model") not in self.models:
            message = f"The model `{body.get('model')}` does not exist."
            return JSONResponse(_error(message, "model_not_found"), status_code=404)
        if self.failures > 0:
            self.failures -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return JSONResponse(_error("The server is overloaded.", "overloaded"), status_code=503, headers=headers)
        return None

    async def _answer(self, body: dict):
        from fastapi.responses import JSONResponse, StreamingResponse

        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            deadline = time.monotonic() + self.hold_seconds
            while not self.released and self.in_flight < self.hold_until and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            self.released = True
            content = body["messages"][-1]["content"]
            await asyncio.sleep(self.delays.get(content, 0))
            text = f"echo {content}"
        finally:
            self.in_flight -= 1
        if body.get("stream"):
            return StreamingResponse(_events(text), media_type="text/event-stream")
        message = {"role": "assistant", "content": text}
        return JSONResponse({"object": "chat.completion", "choices": [{"index": 0, "message": message}]})


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


def _events(text: str):
    """The SSE chunks of `text`, one per word, then the finish chunk and [DONE]."""
    words = text.split(" ")
    for index, word in enumerate(words):
        piece = word if index == 0 else f" {word}"
        yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': piece}}]})}\n\n"
    yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
    yield "data: [DONE]\n\n"
