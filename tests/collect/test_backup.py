"""`plumb collect backup` and `restore`: a backup taken while raters write holds every judgment acknowledged
before it began; a restore refuses a database with rows unless forced and is all or nothing."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from collect import backup, restore
from collect.services.backup import BackupError, backup_store
from collect.store import Judgment, Rater, StoreError, Task, make_engine, open_store, session_factory, upgrade
from tests.support.campaigns import judge, seed_campaign, seed_raters
from tests.support.postgres import create_database, drop_database

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def new_place(db_url, tmp_path, request):
    """An empty database of the same kind as `db_url`: a SQLite path that does not exist yet, or a new database."""
    if db_url.startswith("sqlite"):
        yield str(tmp_path / "restored" / "collect.sqlite")
        return
    server = request.getfixturevalue("postgres_server")
    url = create_database(server)
    yield url
    drop_database(server, url)


class Writer(threading.Thread):
    """Raters judging task after task, each judgment written in its own transaction; `acknowledged` lists
    (task, rater, preference, rationale) of every one whose commit has returned."""

    def __init__(self, sessions, tasks: list[int], raters: list[str]):
        super().__init__()
        self.sessions, self.work = sessions, [(task, rater) for task in tasks for rater in raters]
        self.acknowledged: list[tuple] = []
        self.stop = threading.Event()
        self.failure = None

    def run(self):
        try:
            for task, rater in self.work:
                if self.stop.is_set():
                    return
                preference = (task + len(rater)) % 7 - 3
                judge(self.sessions, rater, task, preference=preference, rationale=f"{rater} on {task}")
                self.acknowledged.append((task, rater, preference, f"{rater} on {task}"))
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.failure = error

    def wait_for(self, count: int) -> None:
        while len(self.acknowledged) < count and self.is_alive():
            self.stop.wait(0.01)
        assert len(self.acknowledged) >= count, self.failure


def judgments_in(url: str) -> set[tuple]:
    sessions = open_store(url)
    with sessions() as session:
        rows = session.execute(
            select(Judgment.task_id, Rater.name, Judgment.preference, Judgment.rationale).join(Rater)
        ).all()
    sessions.kw["bind"].dispose()
    return {tuple(row) for row in rows}


def row_counts(url: str) -> dict[str, int]:
    """Every table's number of rows: what a restore that stopped half way would change."""
    engine = make_engine(url)
    with engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        counts = {name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar() for name in tables}
    engine.dispose()
    return counts


def test_a_backup_taken_while_raters_write_restores_every_judgment_acknowledged_before_it(
    store, db_url, new_place, tmp_path
):
    _, sessions = store
    seed_campaign(sessions, prompts=40, raters_per_task=3, max_raters_per_task=3)
    raters = seed_raters(sessions, 3)
    with sessions() as session:
        tasks = session.scalars(select(Task.id).order_by(Task.id)).all()
    writer = Writer(sessions, tasks, raters)
    writer.start()
    try:
        writer.wait_for(20)
        before = list(writer.acknowledged)
        summary = backup.main(db=db_url, output=str(tmp_path / "backups" / "one.backup"))
        after = len(writer.acknowledged)
        writer.wait_for(after + 5)  # the raters went on writing during and after the backup
    finally:
        writer.stop.set()
        writer.join()
    assert writer.failure is None and summary["bytes"] > 0

    assert restore.main(summary["backup"], db=new_place)["schema"] == "current"
    restored = judgments_in(new_place)
    assert set(before) <= restored  # every acknowledged judgment, with the values it was given
    assert restored <= set(writer.acknowledged)  # and nothing that was never written
    assert len(restored) < len(writer.acknowledged)  # a snapshot: what came after it is not in it


def test_restore_refuses_a_database_with_rows_unless_forced(store, db_url, tmp_path):
    _, sessions = store
    seed_campaign(sessions, prompts=2)
    seed_raters(sessions, 1)
    judge(sessions, "rater0", 1, preference=2)
    taken = backup.main(db=db_url, output=str(tmp_path / "one.backup"))["backup"]
    judge(sessions, "rater0", 2, preference=-1)  # after the backup
    sessions.kw["bind"].dispose()

    with pytest.raises(BackupError, match="is not empty: restoring would replace it .add --force"):
        restore.main(taken, db=db_url)
    assert judgments_in(db_url) == {(1, "rater0", 2, ""), (2, "rater0", -1, "")}
    restore.main(taken, db=db_url, force=True)
    assert judgments_in(db_url) == {(1, "rater0", 2, "")}


def test_a_broken_backup_leaves_the_database_as_it_was(store, db_url, new_place, tmp_path):
    _, sessions = store
    seed_campaign(sessions, prompts=2)
    seed_raters(sessions, 1)
    judge(sessions, "rater0", 1, preference=3)
    sessions.kw["bind"].dispose()
    whole = Path(backup.main(db=db_url, output=str(tmp_path / "whole.backup"))["backup"]).read_bytes()
    broken = tmp_path / "broken.backup"
    # Cut off: SQLite's file half way; pg_dump's archive in its last tables' data, past the schema.
    broken.write_bytes(whole[: len(whole) // 2 if db_url.startswith("sqlite") else len(whole) - 300])

    before = row_counts(db_url)
    with pytest.raises(BackupError):
        restore.main(str(broken), db=db_url, force=True)
    assert row_counts(db_url) == before and judgments_in(db_url) == {(1, "rater0", 3, "")}
    with pytest.raises(BackupError):
        restore.main(str(broken), db=new_place)
    if db_url.startswith("sqlite"):
        assert not Path(new_place).parent.exists() or list(Path(new_place).parent.iterdir()) == []
    else:
        engine = make_engine(new_place)
        assert inspect(engine).get_table_names() == []  # pg_restore ran in one transaction, rolled back
        engine.dispose()


def test_backup_and_restore_from_the_command_line(tmp_path):
    db = tmp_path / "c.sqlite"
    engine = make_engine(str(db))
    upgrade(engine)
    seed_campaign(session_factory(engine), prompts=2)
    engine.dispose()
    taken = tmp_path / "c.backup"

    def plumb(*args):
        return subprocess.run(
            [sys.executable, "-m", "plumb", "collect", *args], capture_output=True, text=True, timeout=300, cwd=REPO
        )

    result = plumb("backup", "--db", str(db), "--output", str(taken))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backup"] == str(taken)
    refused = plumb("restore", "--input", str(taken), "--db", str(db))
    assert refused.returncode == 2 and "add --force" in refused.stderr and "Traceback" not in refused.stderr
    wrong_kind = plumb("restore", "--input", str(taken), "--db", "postgresql://plumb@/plumb")
    assert "a sqlite backup cannot be restored into a postgresql database" in wrong_kind.stderr
    result = plumb("restore", "--input", str(taken), "--db", str(tmp_path / "new.sqlite"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == "current"


def test_a_backup_of_a_mistyped_path_is_refused_and_creates_nothing(tmp_path):
    missing = tmp_path / "typo" / "colect.sqlite"
    with pytest.raises(StoreError, match="no such database; run `plumb collect init"):
        backup_store(str(missing), tmp_path / "backup.sqlite")
    assert not missing.parent.exists() and not (tmp_path / "backup.sqlite").exists()
