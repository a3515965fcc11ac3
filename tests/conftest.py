"""Shared fixtures: tiny random models with real tokenizers, built in seconds, and an offline environment."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from plumb.models import default_reward_dir, load_tokenizer, resolve_policy  # noqa: E402


@pytest.fixture(scope="session")
def plumb_home(tmp_path_factory):
    """A Plumb data directory for the whole test session (the default policy is converted into it once)."""
    home = tmp_path_factory.mktemp("plumb_home")
    os.environ["PLUMB_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def default_policy_dir(plumb_home):
    """The offline default policy, dequantized once per test session."""
    return resolve_policy("default")


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory, default_policy_dir):
    """A 2-layer random Llama with SmolLM2's real tokenizer and chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(default_policy_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    path = tmp_path_factory.mktemp("tiny_policy")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_reward_dir(tmp_path_factory):
    """A 2-layer random BERT sequence classifier (one reward logit) with MiniLM's real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(default_reward_dir())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    path = tmp_path_factory.mktemp("tiny_reward")
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


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
