"""Kill -9 under load: a collect server SIGKILLed and restarted while raters judge, and the check that every
acknowledged judgment is stored as it was acknowledged.

The servers are forked by a launcher process (`python -m tests.support.crash`) that has already imported what
`plumb collect serve` loads: a fresh `python -m plumb` spends about ten seconds of a loaded two-core machine
importing Gradio, and these tests restart the server after every kill. The forked child runs `plumb.cli.main`
with the command line a person would type, so what is killed is the real server, started as the CLI starts it.
"""

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select

from collect.app.keys import CHOICE_KEYS, button_label
from collect.domain.answers import BOTH_BAD_CHOICE, answer_of, choices
from collect.store import (
    Assignment,
    Campaign,
    Judgment,
    Prompt,
    Rater,
    Task,
    create_rater,
    live_judgments_query,
    make_engine,
    session_factory,
    upgrade,
)
from tests.support.campaigns import seed_campaign
from tests.support.serving import free_port

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = "demo"
# Every answer of the scale in turn, "Both bad" included: a value swapped or lost in storage shows.
CHOICES = choices()
BUTTONS = {choice: button_label(key, choice) for key, choice in CHOICE_KEYS}  # the page's answer buttons
# A rater's wait for a restarted server, and a test's for its raters: only bounds a hang, never a measurement.
PATIENCE_S = 300


# The launcher: imports once, forks a server per start.

# `plumb collect serve` (Gradio above all), and what building the server and its first requests import lazily.
WARM_IMPORTS = (
    "collect.app.interface",
    "collect.serve",
    "collect.serve_api",
    "collect.services.demo_accounts",
    "collect.services.generation",
    "plumb.generation",
    "uvicorn",
    "alembic.command",
    "alembic.runtime.migration",
    "alembic.script",
    "argon2",
    "matplotlib.dates",
    "matplotlib.figure",
    "psycopg",
    "pygments.formatters",
    "pygments.lexers",
    "sqlite3",
)


def launcher_main() -> None:
    """Import the servers' code, then answer one JSON request a line on stdin (start, kill, poll) until EOF."""
    # What a start and its first requests would otherwise import in every forked server.
    for module in WARM_IMPORTS:
        importlib.import_module(module)
    import plumb.cli

    children = set()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["do"] == "start":
            pid = os.fork()
            if pid == 0:
                _run_child(plumb.cli.main, request["argv"], request["log"])
            children.add(pid)
            reply = {"pid": pid}
        elif request["do"] == "kill":
            os.kill(request["pid"], signal.SIGKILL)
            reply = {"code": _reap(request["pid"], 0)}
            children.discard(request["pid"])
        else:  # poll
            reply = {"code": _reap(request["pid"], os.WNOHANG)}
        print(json.dumps(reply), flush=True)
    for pid in children:  # the test is over: leave no server behind
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _run_child(main: Callable, argv: list[str], log: str) -> None:
    # The launcher's stdout is its reply channel: the server writes to its own log instead.
    code = 1
    try:
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(pid: int, options: int) -> int | None:
    """The exit code of a child (negative: the signal that ended it), or None while it runs."""
    done, status = os.waitpid(pid, options)
    return os.waitstatus_to_exitcode(status) if done else None


class Launcher:
    """The launcher process, driven from the test: start a server command, SIGKILL it, ask whether it runs."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.crash"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        self._read()  # the imports are done

    def start(self, argv: list[str], log: Path) -> int:
        """Fork a server running `plumb argv...`, its output appended to `log`; returns its pid."""
        return self._ask(do="start", argv=argv, log=str(log))["pid"]

    def kill(self, pid: int) -> int:
        """SIGKILL a server and wait until it is gone; returns its exit code (-9 when the kill ended it)."""
        return self._ask(do="kill", pid=pid)["code"]

    def exit_code(self, pid: int) -> int | None:
        """A server's exit code once it has stopped by itself, None while it runs."""
        return self._ask(do="poll", pid=pid)["code"]

    def close(self) -> None:
        """Stop the launcher; it kills any server still running."""
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def _ask(self, **request) -> dict:
        with self._lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            return self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the launcher stopped (exit code {self.process.wait()})")
        return json.loads(line)


# The server under test: restarted on a fresh port after each kill.


class Server:
    """One server command, started by the launcher and SIGKILLed on demand; raters follow it across restarts.

    `generation` counts starts. A rater whose request fails asks `survived`: the failure is a kill's when the
    server was marked down before it, or has been restarted since; otherwise it is the server's own fault.
    """

    def __init__(self, launcher: Launcher, command: Callable[[int], list[str]], log: Path):
        self.launcher, self.command, self.log = launcher, command, log
        self.url, self.pid, self.generation, self.kills = "", None, 0, 0
        self.up = False
        self._changed = threading.Condition()

    def start(self) -> None:
        """Fork the server on a free port and wait until it answers HTTP."""
        port = free_port()
        self.pid = self.launcher.start(self.command(port), self.log)
        url = f"http://127.0.0.1:{port}"
        self._wait_until_answering(url)
        with self._changed:
            self.url, self.generation, self.up = url, self.generation + 1, True
            self._changed.notify_all()

    def kill(self) -> None:
        """SIGKILL the server, whatever it is doing; raters' failures from now on are the kill's."""
        with self._changed:
            self.up = False  # before the signal, so no failure it causes is taken for a server fault
        code = self.launcher.kill(self.pid)
        assert code == -signal.SIGKILL, f"the server had already stopped by itself (exit code {code}): {self.tail()}"
        self.kills += 1

    def current(self) -> tuple[str, int]:
        """(URL, generation) of the running server; waits while it is down."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.up, timeout=PATIENCE_S):
                raise TimeoutError("the server was not restarted")
            return self.url, self.generation

    def survived(self, generation: int, error: BaseException) -> None:
        """After a failed request to `generation`: re-raise `error` unless a kill explains it; the caller retries."""
        with self._changed:
            if self.up and self.generation == generation:
                raise RuntimeError(f"a request failed with no kill to explain it: {error!r}") from error

    def tail(self, lines: int = 30) -> str:
        """The end of the servers' log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_answering(self, url: str) -> None:
        for _ in range(3000):  # bounds a broken start; a working one answers within seconds
            with contextlib.suppress(httpx.TransportError):
                httpx.get(url + "/openapi.json", timeout=10)
                return
            code = self.launcher.exit_code(self.pid)
            assert code is None, f"the server stopped while starting (exit code {code}): {self.tail()}"
            time.sleep(0.1)
        raise TimeoutError(f"the server did not answer: {self.tail()}")


# What the raters sent, and what came back.


@dataclass
class Submission:
    """One answer a rater sent: its rationale is unique, so it names the judgment in the store."""

    rater: str
    rationale: str
    choice: str
    question: str  # the prompt's text, as shown with the task
    judgment_id: int | None = None  # the REST API's acknowledgement names the row


class Ledger:
    """Every submission by outcome, shared by the rater threads: acknowledged, unanswered (sent or not), refused."""

    def __init__(self):
        self.acknowledged: list[Submission] = []
        self.in_flight: list[Submission] = []  # sent, no answer: the server was killed before it replied
        self.not_sent: list[Submission] = []  # no connection: the server was down
        self.refused: list[tuple[Submission | None, str]] = []
        self.errors: list[str] = []  # a rater thread that failed: a traceback each
        self.raters = 0  # rater threads still judging
        self.outstanding = 0  # submissions sent and not answered yet
        self._changed = threading.Condition()

    def sending(self) -> None:
        """A submission is on its way: until it is answered, a kill would catch it in flight."""
        with self._changed:
            self.outstanding += 1

    def acknowledge(self, submission: Submission) -> None:
        """The server said the judgment is stored."""
        with self._changed:
            self.acknowledged.append(submission)
            self.outstanding -= 1
            self._changed.notify_all()

    def unanswered(self, submission: Submission, *, sent: bool) -> None:
        """No answer came back; `sent` unless the connection itself failed."""
        with self._changed:
            (self.in_flight if sent else self.not_sent).append(submission)
            self.outstanding -= 1

    def refuse(self, submission: Submission | None, detail: str) -> None:
        """The server answered, but not with "stored" (a 4xx or 5xx, or a message on the page)."""
        with self._changed:
            self.refused.append((submission, detail))
            self.outstanding -= submission is not None
            self._changed.notify_all()

    def fail(self, error: str) -> None:
        """A rater thread stopped on an error."""
        with self._changed:
            self.errors.append(error)
            self._changed.notify_all()

    def rater_started(self) -> None:
        """One more rater thread is judging."""
        with self._changed:
            self.raters += 1

    def rater_ended(self) -> None:
        """A rater thread has nothing left to do, or has failed."""
        with self._changed:
            self.raters -= 1
            self._changed.notify_all()

    def done(self) -> bool:
        """Whether every rater has ended."""
        with self._changed:
            return self.raters == 0

    def wait_for(self, count: int) -> None:
        """Until an acknowledgement brings the count to `count` while another submission is on its way, or to
        `count` + 2 regardless; or until every rater has ended, or one has failed or been refused."""

        def time_to_kill() -> bool:
            # Right after an acknowledgement its commit is freshest, and another answer is most often in flight.
            acknowledged = len(self.acknowledged)
            return acknowledged >= count + 2 or (acknowledged >= count and self.outstanding > 0)

        with self._changed:
            # Woken by acknowledgements, never by a sending, so the kill follows an acknowledgement at once.
            self._changed.wait_for(
                lambda: time_to_kill() or self.raters == 0 or self.errors or self.refused, timeout=PATIENCE_S
            )

    def summary(self) -> dict:
        """How many submissions ended each way."""
        with self._changed:
            return {
                "acknowledged": len(self.acknowledged),
                "in_flight": len(self.in_flight),
                "not_sent": len(self.not_sent),
                "refused": len(self.refused),
            }


# The load: raters in threads, and the kills.


def run_with_kills(server: Server, raters: list[Callable[[], None]], ledger: Ledger, *, kills: int, total: int) -> int:
    """Start `server`, let the `raters` judge in threads, SIGKILL and restart it `kills` times as the
    acknowledgements pass evenly spaced marks of `total` judgments, and SIGKILL it once more when they are done.

    The last mark is kills/(kills + 2) of `total`, not nearer the end: an answer whose acknowledgement a kill cut
    off is stored but never acknowledged, so the acknowledgements can end short of `total`, by up to one answer
    per rater at each kill. Returns how many kills came while the raters were judging.
    """
    server.start()
    threads = [threading.Thread(target=_guarded(rater, ledger), daemon=True) for rater in raters]
    for thread in threads:
        ledger.rater_started()
        thread.start()
    for mark in range(1, kills + 1):
        ledger.wait_for(total * mark // (kills + 2))
        if ledger.done() or ledger.errors or ledger.refused:
            break
        server.kill()
        server.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)
    assert ledger.done(), "a rater thread did not finish"
    under_load = server.kills
    server.kill()  # the last stop is a crash too, with nothing in flight
    return under_load


def _guarded(rater: Callable[[], None], ledger: Ledger) -> Callable[[], None]:
    def run() -> None:
        try:
            rater()
        except BaseException:
            ledger.fail(traceback.format_exc())
        finally:
            ledger.rater_ended()

    return run


def rest_rater(server: Server, ledger: Ledger, name: str, token: str) -> Callable[[], None]:
    """A rater of the REST API: next task, answer it, until nothing is left; after a kill, on with the next task."""

    def rate() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE_S) as client:
            for number in range(1, 1000):
                url, generation = server.current()
                try:
                    if not _judge_over_rest(client, url, ledger, _numbered(name, number)):
                        return
                except httpx.TransportError as error:
                    server.survived(generation, error)

    return rate


def _judge_over_rest(client: httpx.Client, url: str, ledger: Ledger, numbered: Callable[[str], Submission]) -> bool:
    """Lease the next task and answer it; False when nothing is left or the server refused."""
    task = client.get(f"{url}/api/campaigns/{CAMPAIGN}/next")
    if task.status_code != 200:
        ledger.refuse(None, f"next: {task.status_code} {task.text}")
        return False
    view = task.json()
    if view is None:
        return False  # nothing left for this rater
    submission = numbered(view["prompt"][-1]["content"])
    body = {"assignment_id": view["assignment_id"], "choice": submission.choice, "rationale": submission.rationale}
    with _sending(ledger, submission):
        answer = client.post(f"{url}/api/campaigns/{CAMPAIGN}/judgments", json=body)
    if answer.status_code != 201:
        ledger.refuse(submission, f"{answer.status_code} {answer.text}")
        return False
    submission.judgment_id = answer.json()["judgment_id"]
    ledger.acknowledge(submission)
    return True


class PageSession:
    """A rater's tab of the page, over Gradio's HTTP API: logged in with their password, events called by name, the
    page's state kept on the server under the tab's session hash, as the browser's is."""

    def __init__(self, url: str, name: str, password: str):
        self.client = httpx.Client(base_url=url, timeout=PATIENCE_S)
        self.session_hash = uuid.uuid4().hex
        try:
            self.client.post("/login", data={"username": name, "password": password}).raise_for_status()
        except BaseException:
            self.client.close()
            raise

    def call(self, api_name: str, *data) -> list:
        """Run the page's event `api_name` on `data` (all its inputs, a state as None); returns its outputs."""
        body = {"data": list(data), "session_hash": self.session_hash}
        event_id = self.client.post(f"/gradio_api/call/{api_name}", json=body).raise_for_status().json()["event_id"]
        try:
            return self._outputs(api_name, event_id)
        except httpx.ConnectError as error:
            # The event is queued already, so the server may have acted on it: not a failure to send.
            raise httpx.ReadError(f"no result for event {event_id}: {error}") from error

    def close(self) -> None:
        """Close the tab's connections."""
        self.client.close()

    def _outputs(self, api_name: str, event_id: str) -> list:
        with self.client.stream("GET", f"/gradio_api/call/{api_name}/{event_id}") as stream:
            event = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    data = json.loads(line.removeprefix("data:"))
                    if event == "error":
                        raise RuntimeError(f"the page's {api_name} event failed: {data}")
                    return data
        raise httpx.RemoteProtocolError(f"the stream of event {event_id} ended without a result")


def page_rater(server: Server, ledger: Ledger, name: str, password: str) -> Callable[[], None]:
    """A rater of the page, through its own events: log in, show the task, press an answer button, until nothing
    is left; after a kill, a new login and on with whatever task the page shows."""

    def rate() -> None:
        answers = (_numbered(name, number) for number in range(1, 1000))  # one a judge event, sent or not
        while True:
            url, generation = server.current()
            page = None
            try:
                page = PageSession(url, name, password)
                return _judge_on_page(page, ledger, answers)
            except httpx.TransportError as error:
                server.survived(generation, error)
            finally:
                if page is not None:
                    page.close()

    return rate


def _judge_on_page(page: PageSession, ledger: Ledger, answers: Iterator[Callable[[str], Submission]]) -> None:
    """Answer the tasks the page shows until none is left or the page refuses an answer."""
    outputs = page.call("show_task")
    while (question := _question_on(outputs)) is not None:
        submission = next(answers)(question)
        with _sending(ledger, submission):
            # The event's inputs: the tab's state (kept on the server), the button pressed, rationale, flags.
            outputs = page.call("judge", None, BUTTONS[submission.choice], submission.rationale, [])
        saved = f"Saved: {submission.choice}."
        if not any(isinstance(output, str) and output.startswith(saved) for output in outputs):
            ledger.refuse(submission, f"the page answered {outputs}")
            return
        ledger.acknowledge(submission)


def _question_on(outputs: list) -> str | None:
    # The conversation is the first list among the outputs (the flags come later); empty when no task is left.
    chat = next(output for output in outputs if isinstance(output, list))
    if not chat:
        return None
    content = chat[-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


@contextlib.contextmanager
def _sending(ledger: Ledger, submission: Submission):
    """Note a submission on its way, and one that got no answer (sent or not), letting the error on."""
    ledger.sending()
    try:
        yield
    except httpx.TransportError as error:
        ledger.unanswered(submission, sent=not isinstance(error, httpx.ConnectError))
        raise


def _numbered(rater: str, number: int) -> Callable[[str], Submission]:
    """The rater's `number`th answer, to the task whose prompt says `question`: the next choice of the scale."""
    return lambda question: Submission(rater, f"{rater} #{number}", CHOICES[number % len(CHOICES)], question)


# The campaign, and the check of the store after the last kill.


def seed_crash_campaign(url: str, *, prompts: int, raters: int, overlap: int) -> dict[str, tuple[str, str]]:
    """A migrated store with a pairwise campaign 'demo' of `prompts` tasks judged by `overlap` raters each, and
    `raters` raters with a password and an API token: {name: (password, token)}."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    # max = target: the overlap never grows on disagreement, so "over its overlap" has one meaning.
    seed_campaign(sessions, name=CAMPAIGN, prompts=prompts, raters_per_task=overlap, max_raters_per_task=overlap)
    accounts = {}
    with sessions.begin() as session:
        for index in range(raters):
            name, password = f"rater{index}", f"rater{index}-secret"
            accounts[name] = (password, create_rater(session=session, name=name, password=password)[1])
    engine.dispose()
    return accounts


@dataclass
class StoredJudgment:
    """A judgment row as the check needs it: who, which task's prompt, the answer as shown to the rater."""

    id: int
    rater: str
    question: str
    rationale: str
    choice: str | None  # the label of the answer in the order the rater saw (None: no pairwise answer)
    task_id: int
    live: bool  # neither superseded nor a retraction


def stored_judgments(url: str) -> tuple[list[StoredJudgment], dict[int, tuple[int, int, int]]]:
    """Every judgment row of campaign 'demo', and per task (live judgments, its judgment_count, its overlap)."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.name == CAMPAIGN))
            live_ids = set(session.scalars(live_judgments_query(campaign.id).with_only_columns(Judgment.id)))
            rows = session.execute(
                select(Judgment, Rater.name, Prompt.messages, Assignment.candidate_order)
                .join(Rater, Rater.id == Judgment.rater_id)
                .join(Task, Task.id == Judgment.task_id)
                .join(Prompt, Prompt.id == Task.prompt_id)
                .join(Assignment, Assignment.id == Judgment.assignment_id)
                .where(Task.campaign_id == campaign.id)
                .order_by(Judgment.id)
            ).all()
            judgments = [
                StoredJudgment(
                    id=judgment.id,
                    rater=rater,
                    question=messages[-1]["content"],
                    rationale=judgment.rationale,
                    choice=_shown_choice(judgment, order),
                    task_id=judgment.task_id,
                    live=judgment.id in live_ids,
                )
                for judgment, rater, messages, order in rows
            ]
            tasks = {
                task.id: (
                    sum(j.live for j in judgments if j.task_id == task.id),
                    task.judgment_count,
                    task.target_overlap,
                )
                for task in session.scalars(select(Task).where(Task.campaign_id == campaign.id))
            }
    finally:
        engine.dispose()
    return judgments, tasks


def _shown_choice(judgment: Judgment, order: list[int]) -> str | None:
    # Stored canonical (positive: the task's first candidate better); the rater chose in display order.
    if judgment.both_bad:
        return BOTH_BAD_CHOICE
    if judgment.preference is None:
        return None
    shown = judgment.preference if order[0] == 0 else -judgment.preference
    return next(label for label in CHOICES if answer_of(label)["preference"] == shown)


def store_problems(url: str, ledger: Ledger) -> tuple[list[str], dict]:
    """What is wrong with the store after the kills, and the counts: every acknowledged judgment stored live with
    the values sent; every other stored judgment one whose request was in flight at a kill; no task over its
    overlap or off its count; no rater with a task twice."""
    judgments, tasks = stored_judgments(url)
    by_rationale = {}
    for judgment in judgments:
        by_rationale.setdefault(judgment.rationale, []).append(judgment)
    problems = [f"stored {len(rows)} times: {rationale!r}" for rationale, rows in by_rationale.items() if len(rows) > 1]
    for sent in ledger.acknowledged:
        problems += _acknowledged_problems(sent, by_rationale.get(sent.rationale, []))
    acknowledged = {sent.rationale for sent in ledger.acknowledged}
    unacknowledged = [judgment for judgment in judgments if judgment.rationale not in acknowledged]
    problems += _unacknowledged_problems(unacknowledged, ledger.in_flight)
    problems += _task_problems(judgments, tasks)
    counts = {**ledger.summary(), "stored": len(judgments), "stored_in_flight": len(unacknowledged)}
    return problems, counts


def _acknowledged_problems(sent: Submission, rows: list[StoredJudgment]) -> list[str]:
    if not rows:
        return [f"acknowledged but not stored: {sent}"]
    stored = rows[0]
    expected = (sent.rater, sent.question, sent.choice, True)
    if (stored.rater, stored.question, stored.choice, stored.live) != expected:
        return [f"acknowledged {sent}, stored {stored}"]
    if sent.judgment_id is not None and sent.judgment_id != stored.id:
        return [f"acknowledged as judgment {sent.judgment_id}, stored as {stored.id}: {sent}"]
    return []


def _unacknowledged_problems(unacknowledged: list[StoredJudgment], in_flight: list[Submission]) -> list[str]:
    # A judgment stored without an acknowledgement is right only when its answer was lost to a kill.
    sent_by_rationale = {sent.rationale: sent for sent in in_flight}
    problems = []
    for judgment in unacknowledged:
        sent = sent_by_rationale.get(judgment.rationale)
        if sent is None:
            problems.append(f"stored, but never acknowledged nor in flight at a kill: {judgment}")
        elif (judgment.rater, judgment.question, judgment.choice, judgment.live) != (
            sent.rater,
            sent.question,
            sent.choice,
            True,
        ):
            problems.append(f"stored unlike it was sent: {judgment} for {sent}")
    return problems


def _task_problems(judgments: list[StoredJudgment], tasks: dict[int, tuple[int, int, int]]) -> list[str]:
    pairs = {}
    for judgment in judgments:
        pairs.setdefault((judgment.task_id, judgment.rater), []).append(judgment.id)
    problems = [
        f"rater {rater} judged task {task} {len(ids)} times: {ids}"
        for (task, rater), ids in pairs.items()
        if len(ids) > 1
    ]
    for task, (live, count, overlap) in tasks.items():
        if live > overlap or live != count:
            problems.append(f"task {task}: {live} live judgments, judgment_count {count}, overlap {overlap}")
    return problems


def forget_judgment(url: str, rationale: str) -> None:
    """Delete a judgment row behind the server's back: what a lost commit would leave (to see the check fail)."""
    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as session:
            session.delete(session.scalar(select(Judgment).where(Judgment.rationale == rationale)))
    finally:
        engine.dispose()


if __name__ == "__main__":
    launcher_main()
