"""PPO's rollout and scoring (align/ppo_rollout.py) on a tiny policy: completions cut after their stop token, and each
figure of a padded batch equal to the one worked out for its row alone."""

import pytest
import torch
from peft import LoraConfig

from align.ppo_models import ACTOR, CRITIC, build_models
from align.ppo_rollout import generate_rollout, score_rollout, tokenize_prompts

PROMPTS = [
    [{"role": "user", "content": "Say hi."}],
    [{"role": "user", "content": "Name three colours of the rainbow, please, in order."}],
    "A plain-text prompt",
    [{"role": "user", "content": "Count to three."}],
]
TEMPERATURE = 0.7


def perturb(module: torch.nn.Module, seed: int, *, only: str) -> None:
    """Noise on the weights whose name contains `only`: an adapter (or head) that has trained."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if only in name:
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))


@pytest.fixture(scope="module")
def models(tiny_policy_dir):
    """A LoRA actor-critic whose actor adapter, critic adapter and value head all differ from where they start."""
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    actor_critic, reference, tokenizer = build_models(
        tiny_policy_dir, {}, config, critic_init="policy", reward_paths=[]
    )
    perturb(actor_critic, 1, only=f".{ACTOR}.")
    perturb(actor_critic, 2, only=f".{CRITIC}.")
    perturb(actor_critic, 3, only="value_head")
    return actor_critic.eval(), reference, tokenizer


@pytest.fixture(scope="module")
def rollout(models):
    """Four completions of up to 8 tokens; about one token in three stops a completion, so most end early."""
    actor_critic, _, tokenizer = models
    stop_ids = {tokenizer.eos_token_id} | set(range(0, len(tokenizer), 3))
    torch.manual_seed(0)
    with torch.no_grad():
        return generate_rollout(
            actor_critic.policy,
            tokenizer,
            PROMPTS,
            max_prompt_length=None,
            max_completion_length=8,
            temperature=TEMPERATURE,
            stop_ids=stop_ids,
        ), stop_ids


def alone(rollout, row: int) -> tuple[torch.Tensor, int, torch.Tensor]:
    """(prompt + kept completion ids of one row, unpadded, shape (1, n); the prompt's length; the completion ids)."""
    prompt = rollout.prompt_ids[row][rollout.prompt_mask[row].bool()]
    completion = rollout.completion_ids[row][rollout.mask[row].bool()]
    return torch.cat([prompt, completion])[None], len(prompt), completion


def test_completions_end_with_their_first_stop_token(models, rollout):
    _, _, tokenizer = models
    rollout, stop_ids = rollout
    lengths = rollout.mask.sum(1).tolist()
    assert any(n < 8 for n in lengths), "with a third of the vocabulary stopping, some completion ends early"
    for row, n in enumerate(lengths):
        ids = rollout.completion_ids[row].tolist()
        assert rollout.mask[row].tolist() == [1] * n + [0] * (len(ids) - n)
        assert all(token not in stop_ids for token in ids[: n - 1])  # no stop token before the last counted one
        assert n == len(ids) or ids[n - 1] in stop_ids
        assert ids[n:] == [tokenizer.pad_token_id] * (len(ids) - n)
        assert rollout.completions[row] == tokenizer.decode(ids[:n], skip_special_tokens=True)
    # Prompts: through the chat template (plain text as it is), left-padded
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in PROMPTS[:2]]
    for row, text in enumerate([*texts, PROMPTS[2]]):
        expected = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert rollout.prompt_ids[row][rollout.prompt_mask[row].bool()].tolist() == expected
        assert rollout.prompt_mask[row].tolist() == [0] * (rollout.prompt_mask.shape[1] - len(expected)) + [1] * len(
            expected
        )
    ids, mask = tokenize_prompts(tokenizer, PROMPTS, 5, "cpu")  # the last 5 tokens of each
    assert mask.sum(1).tolist() == [5, 5, 5, 5] and ids[0].tolist() == rollout.prompt_ids[0][-5:].tolist()


def test_each_figure_of_the_padded_batch_is_the_rows_own(models, rollout, tiny_policy_dir):
    from transformers import AutoModelForCausalLM

    actor_critic, reference, _ = models
    rollout, _ = rollout
    calls = []

    def reward(prompts, completions, completion_ids=None, log_metric=None):
        calls.append((prompts, completions, completion_ids))
        return [float(len(text)) for text in completions]

    # Batches of 3 rows: the second batch is one row, with its own padding
    scored = score_rollout(actor_critic, reference, reward, rollout, temperature=TEMPERATURE, batch_size=3)

    base = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).eval()  # the reference: the base, no adapters
    policy = actor_critic.policy
    for row in range(len(PROMPTS)):
        ids, p, completion = alone(rollout, row)
        n = len(completion)
        with torch.no_grad():
            actor_logits = policy(input_ids=ids).logits[0, p - 1 : p + n - 1] / TEMPERATURE
            base_logits = base(input_ids=ids).logits[0, p - 1 : p + n - 1] / TEMPERATURE
            actor_critic.use_adapter(CRITIC)
            critic_states = policy.get_base_model().model(input_ids=ids).last_hidden_state[0, p - 1 : p + n - 1]
            actor_critic.use_adapter(ACTOR)
            actor_states = policy.get_base_model().model(input_ids=ids).last_hidden_state[0, p - 1 : p + n - 1]
            values = actor_critic.value_head(critic_states).squeeze(-1)
        log_p, log_q = torch.log_softmax(actor_logits, -1), torch.log_softmax(base_logits, -1)
        chosen = completion[:, None]
        torch.testing.assert_close(scored.logprobs[row, :n], log_p.gather(1, chosen)[:, 0], atol=1e-4, rtol=0)
        torch.testing.assert_close(scored.ref_logprobs[row, :n], log_q.gather(1, chosen)[:, 0], atol=1e-4, rtol=0)
        torch.testing.assert_close(scored.values[row, :n], values, atol=1e-4, rtol=0)
        torch.testing.assert_close(scored.entropy[row, :n], -(log_p.exp() * log_p).sum(-1), atol=1e-4, rtol=0)
        # the critic reads its own adapter, and the actor has moved from the reference
        assert not torch.allclose(values, actor_critic.value_head(actor_states).squeeze(-1), atol=1e-3)
        assert not torch.allclose(scored.logprobs[row, :n], scored.ref_logprobs[row, :n], atol=1e-3)

    # The reward function saw each prompt as given, the text and the kept token ids of each completion
    kept = [rollout.completion_ids[r][rollout.mask[r].bool()].tolist() for r in range(len(PROMPTS))]
    assert calls == [(PROMPTS, rollout.completions, kept)]
    assert scored.scores.tolist() == [float(len(text)) for text in rollout.completions]
