"""Shared fixtures: tiny random models with real tokenizers, built in seconds, and an offline environment."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two pytest-xdist workers on two cores: torch's default of a thread per core would oversubscribe them, and
    # spinning OpenMP threads slow everything down many times over. The servers and CLIs the tests start inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from plumb.models import load_tokenizer, resolve_policy  # noqa: E402
from tests.support.models import save_tiny_policy, save_tiny_reward  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def plumb_home(tmp_path_factory):
    """A Plumb data directory for the whole test session, never the user's; its models/ folder (the dequantized
    default policy) is shared by the pytest-xdist workers of one run, so the policy is converted once."""
    home = tmp_path_factory.mktemp("plumb_home")
    shared = run_folder(tmp_path_factory) / "models"
    shared.mkdir(exist_ok=True)
    (home / "models").symlink_to(shared, target_is_directory=True)
    os.environ["PLUMB_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def default_policy_dir(plumb_home, tmp_path_factory):
    """The offline default policy, dequantized once per test run (one worker converts while the others wait)."""
    from filelock import FileLock

    with FileLock(run_folder(tmp_path_factory) / "models.lock"):
        return resolve_policy("default")


def run_folder(tmp_path_factory):
    """This run's temporary folder, which pytest-xdist's workers share (each has its own folder inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory, default_policy_dir):
    """A 2-layer random Llama with SmolLM2's real tokenizer and chat template."""
    return save_tiny_policy(tmp_path_factory.mktemp("tiny_policy"), load_tokenizer(default_policy_dir))


@pytest.fixture(scope="session")
def tiny_reward_dir(tmp_path_factory):
    """A 2-layer random BERT sequence classifier (one reward logit) with MiniLM's real tokenizer."""
    return save_tiny_reward(tmp_path_factory.mktemp("tiny_reward"))


@pytest.fixture(scope="session")
def spread_reward_dir(tmp_path_factory):
    """A tiny BERT of fixed weights whose rewards differ clearly from text to text (the random one's all lie
    within 1e-5 of each other), for tests whose figures hang on the order of scores."""
    return save_tiny_reward(tmp_path_factory.mktemp("spread_reward"), seed=0, initializer_range=0.5)


# In CI (CI=true) a skipped test fails the run: a PostgreSQL or browser test that skips because its server or
# Chromium failed to install would otherwise vanish from a green run.
_skipped: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    """Note each skipped test with its reason."""
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    """With CI=true, any skipped test turns a passing run into a failing one, naming each test and its reason."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes") or not _skipped or exitstatus != 0:
        return
    lines = [f"  {nodeid}: {reason}" for nodeid, reason in _skipped]
    message = f"CI: {len(_skipped)} test(s) skipped; in CI a skip is a failure:\n" + "\n".join(lines)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
