"""Figures worked out in the tests with plain torch, one item at a time, for the align stage's reports to match."""

import torch


def score_alone(reward_model, conversation: list[dict]) -> float:
    """One conversation's reward, on its own (no batch, no padding): the head's logit for its token ids."""
    from reward.encoding import encode_conversation

    model, tokenizer = reward_model
    ids, _ = encode_conversation(tokenizer, conversation, 512)
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, 0].item()


def next_token_log_probs(model, ids: list[int], start: int, end: int) -> torch.Tensor:
    """(end - start, vocab) log-softmax of the logits at positions start..end-1 (predicting tokens start+1..end)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    return torch.log_softmax(logits[start:end], dim=-1)


def kl_along_response(policy, reference, tokenizer, prompt: list[dict], response: str) -> float:
    """sum over the response's tokens t of sum_v p_t(v) (log p_t(v) - log q_t(v)), p the policy, q the reference."""
    context = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
    answer = tokenizer(response, add_special_tokens=False)["input_ids"]
    if not answer:
        return 0.0
    ids = context + answer
    log_p = next_token_log_probs(policy, ids, len(context) - 1, len(ids) - 1)
    log_q = next_token_log_probs(reference, ids, len(context) - 1, len(ids) - 1)
    return float((log_p.exp() * (log_p - log_q)).sum())


def completion_log_prob(model, tokenizer, prompt: list[dict], completion: list[dict]) -> float:
    """log p(completion | prompt): the sum of the log-probs of the tokens the chat template adds after the prompt."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
    full = tokenizer.apply_chat_template(prompt + completion, return_dict=False)
    assert full[: len(prompt_ids)] == prompt_ids, "the prompt is not a prefix of prompt + completion"
    log_probs = next_token_log_probs(model, full, len(prompt_ids) - 1, len(full) - 1)
    targets = torch.tensor(full[len(prompt_ids) :])
    return float(log_probs.gather(1, targets[:, None]).sum())


def assistant_nll(model, tokenizer, conversations) -> tuple[float, int]:
    """(summed negative log-likelihood of the last assistant turns' tokens, their number), one conversation at a time.

    The tokens of the assistant turn are those of the whole conversation after the prompt with its generation
    prompt; the NLL of token t is -log softmax(logits at t - 1)[token t].
    """
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in conversations:
            messages = row["messages"]
            prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
            full = tokenizer.apply_chat_template(messages, tokenize=False)
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            ids = tokenizer(full, add_special_tokens=False)["input_ids"]
            assert ids[: len(prompt_ids)] == prompt_ids
            log_probs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
            for t in range(len(prompt_ids), len(ids)):
                total -= log_probs[t - 1, ids[t]].item()
                count += 1
    return total, count
