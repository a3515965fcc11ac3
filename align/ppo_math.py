"""PPO's arithmetic as pure tensor functions: masks, the KL-shaped reward, GAE, whitening, the clipped losses and the
adaptive KL controller.

Every function takes (batch, completion tokens) tensors and a mask of the tokens that count
(1 up to and including the token that ends the completion, 0 after it); nothing here knows a
model. The choices follow 'The N+ Implementation Details of RLHF with PPO' (Huang et al., 2024),
cited below as "N+", and Ziegler et al. (2019) for the adaptive KL controller.
"""

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The mean of `values` where `mask` is 1 (over `dim`, or over everything)."""
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The unbiased variance of `values` where `mask` is 1 (Bessel's correction, as OpenAI's and TRL's PPO)."""
    mean = masked_mean(values, mask)
    count = mask.sum()
    variance = masked_mean((values - mean) ** 2, mask)
    return variance * count / (count - 1).clamp(min=1)


def whiten(values: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True) -> torch.Tensor:
    """(values - mean) / std over the masked entries, 0 elsewhere; `shift_mean=False` keeps the mean (for rewards)."""
    mean, variance = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def completion_mask(completion_ids: torch.Tensor, stop_ids: set[int]) -> torch.Tensor:
    """1 for each token up to and including the first stop token (N+: truncate after EOS), 0 after; all 1 if none."""
    is_stop = torch.isin(completion_ids, torch.tensor(sorted(stop_ids), device=completion_ids.device))
    # Stops seen strictly before each position: 0 up to and including the first stop token.
    stops_before = torch.cumsum(is_stop.long(), dim=1) - is_stop.long()
    return (stops_before == 0).long()


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last counted token (where the reward model's score goes); 0 for an empty row."""
    return (mask.sum(dim=1) - 1).clamp(min=0).long()


def per_token_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """The KL estimate of each sampled token: k1 = log p - log q (N+, in the reward), or k3 = (q/p - 1) - log(q/p)."""
    if estimator == "k1":
        return logprobs - ref_logprobs
    if estimator == "k3":
        log_ratio = ref_logprobs - logprobs
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"kl_estimator must be k1 or k3, not {estimator!r}")


def kl_shaped_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards: -kl_coef * KL at every counted token, plus the reward model's score at the last one (N+)."""
    rewards = -kl_coef * kl * mask
    last = last_token_index(mask)
    rows = torch.arange(len(scores), device=scores.device)
    rewards[rows, last] += scores.to(rewards.dtype)
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalized advantage estimation (Schulman et al., 2016).

    delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, walking back from the end;
    the value after the last counted token is 0 (the episode ends there). Returns are A + V.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate, mean over tokens of max(-A r, -A clip(r, 1 - eps, 1 + eps)), r = p / p_old.

    Also returns the share of tokens where the clip binds and the approximate KL 0.5 * E[(log r)^2] (N+'s approxkl).
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    stats = {
        "clipfrac": masked_mean((clipped > unclipped).float(), mask),
        "approxkl": 0.5 * masked_mean(log_ratio**2, mask),
        "ratio": masked_mean(ratio, mask),
    }
    return loss, stats


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(0.5 * mean of max((V - R)^2, (V_clipped - R)^2), share clipped), V_clipped within cliprange_value of V_old."""
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    unclipped_loss = (values - returns) ** 2
    clipped_loss = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_loss, clipped_loss), mask)
    return loss, masked_mean((clipped_loss > unclipped_loss).float(), mask)


def adaptive_kl_coef(coef: float, observed_kl: float, *, target: float, horizon: int, n_steps: int) -> float:
    """The next KL coefficient of Ziegler et al.'s (2019) proportional controller.

    error = clip(observed / target - 1, -0.2, 0.2); coef * (1 + error * n_steps / horizon), with `observed_kl` the
    mean KL per completion (summed over its tokens) and `n_steps` the completions in the batch.
    """
    error = min(max(observed_kl / target - 1.0, -0.2), 0.2)
    return coef * (1.0 + error * n_steps / horizon)
