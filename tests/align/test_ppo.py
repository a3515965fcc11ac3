"""`plumb align ppo` end to end on tiny models: the figures it reports are the ones its log holds, the adaptive KL
coefficient follows its formula, a killed run resumes into the same run, the guard keeps the last checkpoint
measured within its limit, a full fine-tuning run starts its critic from the reward model, and the reward goes up
on a reward that is easy to learn."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from align import ppo
from align.ppo_math import adaptive_kl_coef
from plumb.config import parse_config
from plumb.models import load_policy

# Run A: 4 rollouts of 4 prompts, a checkpoint after each, an adaptive KL coefficient that moves visibly
RUN_A = (
    "--max_steps",
    "4",
    "--save_strategy",
    "steps",
    "--save_steps",
    "1",
    "--kl_target",
    "0.05",
    "--kl_horizon",
    "100",
    "--merge_adapter",
    "true",
    "--log_completions",
    "true",
)


def ppo_argv(out: Path, policy: str, *flags: str) -> list[str]:
    """A LoRA PPO run on 8 prompts, rollouts of 4 completions of up to 6 tokens, every step logged."""
    return [
        *("--model_name_or_path", policy, "--output_dir", str(out), "--max_prompts", "8"),
        *("--per_device_train_batch_size", "4", "--max_completion_length", "6", "--logging_steps", "1"),
        *("--report_to", "none", "--learning_rate", "2e-2", "--seed", "0", "--save_strategy", "no"),
        *("--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8"),
        *flags,
    ]


def run(argv: list[str], **kwargs) -> dict:
    return ppo.main(*parse_config(ppo.config_types(argv), argv), **kwargs)


def logged_steps(checkpoint: Path) -> list[dict]:
    """The training log entries (those with a reward) a checkpoint's trainer_state.json recorded."""
    return [e for e in json.loads((checkpoint / "trainer_state.json").read_text())["log_history"] if "reward" in e]


def adapter(folder: Path) -> dict:
    return load_file(str(folder / "adapter_model.safetensors"))


def same(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys(), "not the same model's tensors"
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def run_a(tmp_path_factory, seeded_policy_dir, seeded_reward_dir):
    """(output folder, metrics) of run A, against the tiny reward model. Both models have fixed weights: the guard
    test needs a KL that rises after step 2, which 8 of 10 weight draws give (seed 0 with a margin of 2x)."""
    out = tmp_path_factory.mktemp("ppo_a") / "out"
    return out, run(ppo_argv(out, seeded_policy_dir, "--reward_model", seeded_reward_dir, *RUN_A))


def test_the_run_reports_what_it_logged_and_saves_the_trained_policy(run_a, seeded_policy_dir):
    out, metrics = run_a
    history = logged_steps(out / "checkpoint-4")
    assert [e["step"] for e in history] == [1, 2, 3, 4]
    assert metrics["steps"] == 4 and not metrics["guard_tripped"]
    assert (metrics["first_reward"], metrics["last_reward"]) == (history[0]["reward"], history[-1]["reward"])
    assert metrics["last_kl"] == history[-1]["kl"] and json.loads((out / "metrics.json").read_text()) == metrics
    assert history[0]["kl"] == 0  # the first rollout comes from the reference itself (LoRA starts at zero)
    # The adaptive controller (Ziegler et al.): each step's coefficient from the one before and that rollout's KL
    for before, after in zip(history, history[1:]):
        expected = adaptive_kl_coef(before["kl_coef"], before["objective/kl"], target=0.05, horizon=100, n_steps=4)
        assert after["kl_coef"] == pytest.approx(expected, rel=1e-9)
    assert history[-1]["kl_coef"] != history[0]["kl_coef"]

    # The result: the last checkpoint's actor merged into the base, not the starting policy; the critic beside it
    ids = torch.tensor([[1, 5, 9, 13, 17, 21, 25]])
    final, _ = load_policy(str(out))
    last, _ = load_policy(str(out / "checkpoint-4"), merge_adapter=True)
    start, _ = load_policy(seeded_policy_dir)
    with torch.no_grad():
        logits = [model(input_ids=ids).logits for model in (final, last, start)]
    assert torch.allclose(logits[0], logits[1], atol=1e-5) and not torch.allclose(logits[0], logits[2], atol=1e-3)
    assert (out / "critic" / "critic.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert "Online RL (PPO) policy" in (out / "README.md").read_text()
    resolved = ["--config", str(out / "plumb_config.yaml")]
    assert parse_config(ppo.config_types(resolved), resolved)[1].kl_target == 0.05


def test_a_killed_run_resumes_into_the_same_run(run_a, tmp_path, seeded_policy_dir, seeded_reward_dir, monkeypatch):
    from transformers.trainer_callback import CallbackHandler

    class Killed(BaseException):
        """Stands for SIGKILL after step 3 ran, before it was logged or saved."""

    argv = ppo_argv(tmp_path / "out", seeded_policy_dir, "--reward_model", seeded_reward_dir, *RUN_A)
    on_step_end = CallbackHandler.on_step_end

    def killing(handler, args, state, control):
        if state.global_step == 3:
            raise Killed
        return on_step_end(handler, args, state, control)

    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(CallbackHandler, "on_step_end", killing)
        run(argv)
    metrics = run([*argv, "--resume_from_checkpoint", "true"])

    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 4
    # The same rollouts, rewards, KL coefficient and losses as the run that was never killed
    keys = ("reward", "kl", "kl_coef", "loss", "loss/value", "entropy")
    resumed, whole = logged_steps(tmp_path / "out" / "checkpoint-4"), logged_steps(run_a[0] / "checkpoint-4")
    for step in (2, 3):
        assert {k: resumed[step][k] for k in keys} == pytest.approx({k: whole[step][k] for k in keys}, rel=1e-4)


def test_the_guard_keeps_the_last_checkpoint_measured_within_its_limit(
    run_a, tmp_path, seeded_policy_dir, seeded_reward_dir
):
    # Run A again with max_kl at its step-2 KL: step 2 is on the limit (within), a later step crosses it.
    kls = [e["kl"] for e in logged_steps(run_a[0] / "checkpoint-4")]
    assert kls[0] == 0 < kls[1] < max(kls[2:]), kls
    out = tmp_path / "out"
    metrics = run(
        ppo_argv(out, seeded_policy_dir, "--reward_model", seeded_reward_dir, *RUN_A, "--max_kl", repr(kls[1]))
    )

    trip = next(step for step, kl in enumerate(kls, start=1) if kl > kls[1])
    assert metrics["guard_tripped"] and metrics["steps"] == trip >= 3
    report = json.loads((out / "guard.json").read_text())
    assert (report["step"], report["last_good_step"]) == (trip, trip - 1)
    # Step trip-1's figures were measured on checkpoint-(trip-2): that one is kept, not the one that crossed the limit
    kept_from = trip - 2
    assert report["kept"] == str(out / f"checkpoint-{kept_from}") and metrics["kept"] == str(out / "last_good")
    kept = adapter(out / "last_good")
    assert same(kept, adapter(run_a[0] / f"checkpoint-{kept_from}"))  # the same run, up to the trip
    assert not same(kept, adapter(out / f"checkpoint-{trip - 1}"))
    assert any(v.abs().max() > 0 for k, v in kept.items() if "lora_B" in k)  # trained, not the starting policy
    load_policy(str(out / "last_good"))  # a policy the next stage loads
    assert not (out / "model.safetensors").exists()  # the over-optimised policy is not the result


def test_full_fine_tuning_starts_the_critic_from_a_reward_model_that_reads_the_policys_tokens(
    tmp_path,
    tiny_policy_dir,
    decoder_reward_dir,
):
    out = tmp_path / "out"
    flags = ("--use_peft", "false", "--reward_model", decoder_reward_dir, "--max_steps", "2")
    metrics = run(ppo_argv(out, tiny_policy_dir, *flags))
    assert metrics["steps"] == 2 and metrics["first_reward"] is not None
    reward_head = load_file(f"{decoder_reward_dir}/model.safetensors")["score.weight"]
    value_head = load_file(str(out / "critic" / "value_head.safetensors"))["value_head.weight"]
    assert value_head.shape == reward_head.shape and not torch.equal(value_head, reward_head)  # it started there
    assert (out / "critic" / "config.json").is_file() and (out / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def peaked_policy_dir(tmp_path_factory, seeded_policy_dir):
    """The tiny policy of fixed weights (seeds 0-3 all pass; the session's random one may not) with its (tied)
    embeddings scaled by 10: next-token distributions with preferences to shift."""
    from transformers import AutoModelForCausalLM

    from plumb.models import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(seeded_policy_dir)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
    path = tmp_path_factory.mktemp("peaked_policy")
    model.save_pretrained(path)
    load_tokenizer(seeded_policy_dir).save_pretrained(path)
    return str(path)


def test_the_reward_goes_up_on_a_reward_that_is_easy_to_learn(tmp_path, peaked_policy_dir):
    # Each token scores its embedding's projection on one direction: a reward the policy can climb by steering its
    # last hidden state that way.
    from transformers import AutoModelForCausalLM

    embeddings = AutoModelForCausalLM.from_pretrained(peaked_policy_dir).get_input_embeddings().weight.detach()
    direction = torch.randn(embeddings.shape[1], generator=torch.Generator().manual_seed(0))
    token_score = embeddings @ direction
    token_score = (token_score - token_score.mean()) / token_score.std()

    def reward(prompts, completions, completion_ids=None, log_metric=None):
        return [float(token_score[ids].mean()) if ids else 0.0 for ids in completion_ids]

    flags = ("--max_prompts", "16", "--per_device_train_batch_size", "16", "--max_steps", "6")
    flags += ("--lora_target_modules", "all-linear", "--learning_rate", "5e-2", "--save_strategy", "steps")
    metrics = run(ppo_argv(tmp_path / "out", peaked_policy_dir, *flags, "--save_steps", "6"), reward=reward)
    rewards = [e["reward"] for e in logged_steps(tmp_path / "out" / "checkpoint-6")]
    assert len(rewards) == 6 and (metrics["first_reward"], metrics["last_reward"]) == (rewards[0], rewards[-1])
    assert sum(rewards[-2:]) / 2 > sum(rewards[:2]) / 2 + 0.4, rewards
