"""Signing in to the page: throttled, argon2 off the event loop, and sessions that expire and can be ended.

Gradio keeps its logins in `app.tokens` (cookie token -> user name); `StoredLogins` stands in
for that dict so that every session is a row of the store (`collect.store.web_sessions`):
it expires when idle or old, and ends when the rater's password is reset or they are
deactivated, from whichever process does it. `LoginThrottle` slows repeated failures per
account (in the sign-in function) and per client address (`LoginGuard`, on the route).
"""

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, MutableMapping

import anyio
from fastapi.responses import JSONResponse

from collect.store import authenticate, rater_by_name
from collect.store.web_sessions import SessionLimits, end_web_sessions, open_web_session, web_session_rater

# argon2 is slow on purpose and holds a core: two at a time leaves the other requests room on a small machine.
ARGON2_SLOTS = 2


class LoginThrottle:
    """After `max_failures` failed sign-ins of one key within `window` seconds, refuse it for a growing pause.

    The pause doubles with each further failure, from `pause` seconds up to `window`; a success clears the key.
    """

    def __init__(self, *, max_failures: int, window: float = 900.0, pause: float = 30.0, clock=time.monotonic):
        self.max_failures, self.window, self.pause, self.clock = max_failures, window, pause, clock
        self._failures: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait_left(self, key: str) -> float:
        """Seconds until `key` may try again (0 when it may now)."""
        with self._lock:
            failures = self._recent(key)
            extra = len(failures) - self.max_failures
            if extra < 0:
                return 0.0
            pause = min(self.window, self.pause * 2**extra)
            return max(0.0, failures[-1] + pause - self.clock())

    def failed(self, key: str) -> None:
        """Count a failed sign-in of `key`."""
        with self._lock:
            self._recent(key).append(self.clock())

    def succeeded(self, key: str) -> None:
        """Forget `key`'s failures."""
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str) -> deque:
        failures, horizon = self._failures[key], self.clock() - self.window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures


def password_check(sessions, throttle: LoginThrottle) -> Callable:
    """Gradio's sign-in function: argon2 in a worker thread (never on the event loop), throttled per account."""
    limiter = anyio.CapacityLimiter(ARGON2_SLOTS)

    def verify(name: str, password: str) -> bool:
        with sessions.begin() as session:
            return authenticate(session=session, name=name, password=password) is not None

    async def check(name: str, password: str) -> bool:
        account = name.strip().casefold()
        if throttle.wait_left(account) > 0:
            return False  # the same answer as a wrong password: a throttled account says nothing more
        ok = await anyio.to_thread.run_sync(verify, name, password, limiter=limiter)
        (throttle.succeeded if ok else throttle.failed)(account)
        return ok

    return check


class StoredLogins(MutableMapping):
    """Gradio's `app.tokens`, kept in the store: a token maps to its rater's name while the session is alive."""

    def __init__(self, sessions, limits: SessionLimits):
        self.sessions, self.limits = sessions, limits
        self._here: dict[str, str] = {}  # this process's tokens, which Gradio's sign-out iterates over

    def __setitem__(self, token: str, name: str) -> None:
        with self.sessions.begin() as session:
            open_web_session(session=session, rater=rater_by_name(session=session, name=name), token=token)
        self._here[token] = name

    def __getitem__(self, token: str) -> str | None:
        # None, not KeyError, for a dead session: Gradio's sign-out compares `tokens[t] == user` for each token.
        with self.sessions.begin() as session:
            rater = web_session_rater(session=session, token=token, limits=self.limits)
        if rater is None:
            self._here.pop(token, None)
            return None
        return rater.name

    def get(self, token, default=None):
        """The rater name of a live session, else `default`."""
        name = self[token] if isinstance(token, str) else None
        return default if name is None else name

    def __delitem__(self, token: str) -> None:
        with self.sessions.begin() as session:
            end_web_sessions(session=session, token=token)
        self._here.pop(token, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._here))

    def __len__(self) -> int:
        return len(self._here)


class LoginGuard:
    """Per client address, answer 429 with Retry-After to sign-in posts after too many failures."""

    def __init__(self, app, throttle: LoginThrottle):
        self.app, self.throttle = app, throttle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        address = (scope.get("client") or ("unknown",))[0]
        wait = self.throttle.wait_left(address)
        if wait > 0:
            response = JSONResponse(
                {"detail": "too many failed sign-ins from this address; try again later"},
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
            return await response(scope, receive, send)
        status = {}

        async def watched(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, watched)
        # A success does not clear the address: one valid account must not reset the count of guesses at others.
        if status.get("code") in (400, 401):
            self.throttle.failed(address)
