"""PPO's rollout and its scoring: the actor samples a completion per prompt, then the actor, the reference, the
critic and the reward model(s) each give their figure for every completion token (or, for the reward model, for
the whole completion).

Prompts go through TRL's chat-template helper (a prompt may be a message list or plain text); generation is
transformers' `generate`, or vLLM's through TRL's `VLLMGeneration` when `use_vllm` is on.
"""

from dataclasses import dataclass

import torch
from transformers import GenerationConfig
from trl.data_utils import maybe_apply_chat_template
from trl.trainer.utils import entropy_from_logits, pad, selective_log_softmax

from align.ppo_math import completion_mask
from align.ppo_models import ActorCritic, reference_logits


@dataclass
class Rollout:
    """Prompts and the completions sampled for them, as token ids: prompts left-padded, completions right-padded
    after their first stop token; `mask` is 1 for each completion token up to and including that stop token."""

    prompts: list
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    mask: torch.Tensor
    completions: list[str]

    @property
    def input_ids(self) -> torch.Tensor:
        """Prompt and completion, one row each."""
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        """Which tokens of `input_ids` are real (no left padding, nothing after the stop token)."""
        return torch.cat([self.prompt_mask, self.mask], dim=1)


@dataclass
class Scored:
    """A rollout's figures: per completion token (batch, length) and per completion (batch,)."""

    logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor
    entropy: torch.Tensor


def tokenize_prompts(tokenizer, prompts: list, max_prompt_length: int | None, device) -> tuple[torch.Tensor, ...]:
    """(ids, mask) of prompts through the chat template with the generation prompt, left-padded; the last
    `max_prompt_length` tokens of each kept."""
    texts = [maybe_apply_chat_template({"prompt": prompt}, tokenizer)["prompt"] for prompt in prompts]
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    if max_prompt_length:
        rows = [row[-max_prompt_length:] for row in rows]
    ids = pad([torch.tensor(row) for row in rows], padding_value=tokenizer.pad_token_id, padding_side="left")
    mask = pad([torch.ones(len(row), dtype=torch.long) for row in rows], padding_value=0, padding_side="left")
    return ids.to(device), mask.to(device)


def generate_rollout(
    policy,
    tokenizer,
    prompts: list,
    *,
    max_prompt_length: int | None,
    max_completion_length: int,
    temperature: float,
    stop_ids: set[int],
    vllm=None,
) -> Rollout:
    """Sample one completion per prompt from `policy` (pure sampling at `temperature`: no top-k, no top-p, N+), cut
    each after its first stop token, and decode it. `vllm`: a TRL `VLLMGeneration` to sample with instead."""
    device = next(policy.parameters()).device
    prompt_ids, prompt_mask = tokenize_prompts(tokenizer, prompts, max_prompt_length, device)
    if vllm is not None:
        unpadded = [ids[mask.bool()].tolist() for ids, mask in zip(prompt_ids, prompt_mask)]
        _, sampled, _, _ = vllm.generate(unpadded, None, 1)
        completion_ids = pad([torch.tensor(row, dtype=torch.long) for row in sampled], tokenizer.pad_token_id)
    else:
        generation = GenerationConfig(
            max_new_tokens=max_completion_length,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            eos_token_id=sorted(stop_ids),
            pad_token_id=tokenizer.pad_token_id,
        )
        output = policy.generate(input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=generation)
        completion_ids = output[:, prompt_ids.shape[1] :]
    completion_ids = completion_ids.to(device)
    mask = completion_mask(completion_ids, stop_ids)
    completion_ids = torch.where(mask.bool(), completion_ids, tokenizer.pad_token_id)
    completions = [
        tokenizer.decode(ids[row_mask.bool()], skip_special_tokens=True) for ids, row_mask in zip(completion_ids, mask)
    ]
    return Rollout(prompts, prompt_ids, prompt_mask, completion_ids, mask, completions)


def score_rollout(
    actor_critic: ActorCritic,
    reference,
    reward,
    rollout: Rollout,
    *,
    temperature: float,
    batch_size: int,
    log_metric=None,
) -> Scored:
    """The figures PPO needs of a rollout, without gradients: each completion token's log-prob under the actor and the
    reference and the critic's value before it, the actor's entropy there, and each completion's reward.

    `reward` is a TRL-style reward function, `reward(prompts, completions, completion_ids=..., log_metric=...)`
    (an `align.rewards.RewardModels`: the mean of the reward models, minus the penalty for completions that never end).
    """
    length = rollout.completion_ids.shape[1]
    logprobs, ref_logprobs, values, entropy = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(rollout.prompts), batch_size):
            rows = slice(start, start + batch_size)
            ids, attention, tokens = rollout.input_ids[rows], rollout.attention_mask[rows], rollout.completion_ids[rows]
            logits = actor_critic.logits(ids, attention, length, temperature)
            logprobs.append(selective_log_softmax(logits, tokens))
            entropy.append(entropy_from_logits(logits))
            del logits
            ref = reference_logits(actor_critic, reference, ids, attention, length, temperature)
            ref_logprobs.append(selective_log_softmax(ref, tokens))
            del ref
            values.append(actor_critic.values(ids, attention, length))
    kept = [ids[row_mask.bool()].tolist() for ids, row_mask in zip(rollout.completion_ids, rollout.mask)]
    scores = reward(rollout.prompts, rollout.completions, completion_ids=kept, log_metric=log_metric)
    device = rollout.mask.device
    return Scored(
        logprobs=torch.cat(logprobs),
        ref_logprobs=torch.cat(ref_logprobs),
        values=torch.cat(values),
        scores=torch.as_tensor(scores, dtype=torch.float32, device=device),
        entropy=torch.cat(entropy),
    )
