"""PPO's arithmetic (align/ppo_math.py) against values worked out by hand, in the comments beside each."""

import math

import pytest
import torch

from align.ppo_math import (
    adaptive_kl_coef,
    clipped_policy_loss,
    clipped_value_loss,
    completion_mask,
    gae,
    kl_shaped_rewards,
    per_token_kl,
    whiten,
)


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def close(actual: torch.Tensor, expected) -> None:
    torch.testing.assert_close(actual, t(expected), rtol=0, atol=1e-6)


def test_the_mask_ends_with_the_first_stop_token():
    ids = torch.tensor([[5, 7, 2, 9, 2], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0], [3, 4, 2, 1, 0]])
    assert completion_mask(ids, {2}).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]]
    assert completion_mask(ids, {2, 7})[0].tolist() == [1, 1, 0, 0, 0]  # any stop token ends it


def test_gae_on_four_tokens():
    # gamma 0.9, lambda 0.8 (gamma * lambda = 0.72); the value after the last token is 0.
    # Row 1: delta_3 = 1 - 0.2 = 0.8;  delta_2 = 0 + 0.9*0.2 - 0.3 = -0.12;  delta_1 = -0.2 + 0.9*0.3 - 0.4 = -0.33;
    #        delta_0 = 0.1 + 0.9*0.4 - 0.5 = -0.04.
    #        A_3 = 0.8;  A_2 = -0.12 + 0.72*0.8 = 0.456;  A_1 = -0.33 + 0.72*0.456 = -0.00168;
    #        A_0 = -0.04 + 0.72*(-0.00168) = -0.0412096.  Returns = A + V.
    # Row 2 ends after two tokens: what lies after is ignored. delta_1 = 1 - 0.4 = 0.6, delta_0 = 0.9*0.4 - 0.5 = -0.14;
    #        A_1 = 0.6, A_0 = -0.14 + 0.72*0.6 = 0.292.
    rewards = t([[0.1, -0.2, 0.0, 1.0], [0.0, 1.0, 7.0, 7.0]])
    values = t([[0.5, 0.4, 0.3, 0.2], [0.5, 0.4, 9.0, 9.0]])
    mask = t([[1, 1, 1, 1], [1, 1, 0, 0]])
    advantages, returns = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    close(advantages, [[-0.0412096, -0.00168, 0.456, 0.8], [0.292, 0.6, 0.0, 0.0]])
    close(returns, [[0.4587904, 0.39832, 0.756, 1.0], [0.792, 1.0, 0.0, 0.0]])


def test_gae_with_gamma_and_lambda_one_is_the_reward_to_go_minus_the_value():
    rewards, values, mask = t([[0.1, -0.2, 0.0, 1.0]]), t([[0.5, 0.4, 0.3, 0.2]]), t([[1, 1, 1, 1]])
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    close(returns, [[0.9, 0.8, 1.0, 1.0]])  # the sum of the rewards from t on
    close(advantages, [[0.4, 0.4, 0.7, 0.8]])


def test_whitening_uses_the_masked_entries_and_bessels_correction():
    # [1, 2, 3, 4]: mean 2.5, unbiased variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, std 1.2909944
    whitened = whiten(t([[1, 2, 3, 4]]), t([[1, 1, 1, 1]]))
    close(whitened, [[-1.1618950, -0.3872983, 0.3872983, 1.1618950]])
    # The masked 100 counts for nothing: [1, 2, 3] has mean 2, unbiased variance 1
    masked = t([[1, 1, 1, 0]])
    close(whiten(t([[1, 2, 3, 100]]), masked), [[-1, 0, 1, 0]])
    close(whiten(t([[1, 2, 3, 100]]), masked, shift_mean=False), [[1, 2, 3, 0]])


def test_kl_shaped_reward_puts_the_score_on_the_last_counted_token():
    logprobs, ref_logprobs = t([[-1.0, -2.0, -0.5, -3.0]]), t([[-1.5, -1.0, -0.5, -9.0]])
    mask = t([[1, 1, 1, 0]])
    kl = per_token_kl(logprobs, ref_logprobs, "k1")
    close(kl * mask, [[0.5, -1.0, 0.0, 0.0]])  # log p - log q
    # -0.1 * KL at each token, the score 2.0 added at the third (the last counted) token, nothing on padding
    close(kl_shaped_rewards(t([2.0]), kl, mask, 0.1), [[-0.05, 0.1, 2.0, 0.0]])
    # k3 = (q/p - 1) - log(q/p): e^-0.5 - 1 + 0.5 = 0.1065307, e^1 - 1 - 1 = 0.7182818, 0
    k3 = per_token_kl(logprobs, ref_logprobs, "k3") * mask
    close(k3, [[0.1065307, 0.7182818, 0.0, 0.0]])


def test_clipped_policy_loss():
    # ratios 1.5, 0.5, 1.1, 0.7 with advantages 1, 1, -1, -1; epsilon 0.2; a fifth, masked token would dominate.
    # -A r vs -A clip(r): (-1.5 vs -1.2) -> -1.2 clipped; (-0.5 vs -0.8) -> -0.5; (1.1 vs 1.1) -> 1.1;
    # (0.7 vs 0.8) -> 0.8 clipped. Mean (-1.2 - 0.5 + 1.1 + 0.8) / 4 = 0.05; the clip binds on 2 of 4.
    old = t([[-1.0, -1.0, -1.0, -1.0, -1.0]])
    new = old + torch.log(t([[1.5, 0.5, 1.1, 0.7, 50.0]]))
    advantages, mask = t([[1, 1, -1, -1, 5]]), t([[1, 1, 1, 1, 0]])
    loss, stats = clipped_policy_loss(new, old, advantages, mask, 0.2)
    assert loss.item() == pytest.approx(0.05)
    assert stats["clipfrac"].item() == pytest.approx(0.5)
    logs = [math.log(r) for r in (1.5, 0.5, 1.1, 0.7)]
    assert stats["approxkl"].item() == pytest.approx(0.5 * sum(x * x for x in logs) / 4)  # 0.0976445
    assert stats["ratio"].item() == pytest.approx((1.5 + 0.5 + 1.1 + 0.7) / 4)


def test_clipped_value_loss():
    # old 0, 0, 1, 1; new 0.5, 0.1, 0.5, 1.5; returns 1, 1, 0, 1.2; the new value is clipped within 0.2 of the old.
    # (0.5-1)^2 = 0.25 vs (0.2-1)^2 = 0.64 -> 0.64 (clip binds); 0.81 vs 0.81 -> 0.81;
    # 0.5^2 = 0.25 vs 0.8^2 = 0.64 -> 0.64 (binds); (1.5-1.2)^2 = 0.09 vs (1.2-1.2)^2 = 0 -> 0.09.
    # 0.5 * (0.64 + 0.81 + 0.64 + 0.09) / 4 = 0.2725
    loss, clipfrac = clipped_value_loss(
        t([[0.5, 0.1, 0.5, 1.5, 9.0]]),
        t([[0.0, 0.0, 1.0, 1.0, 0.0]]),
        t([[1.0, 1.0, 0.0, 1.2, -9.0]]),
        t([[1, 1, 1, 1, 0]]),
        0.2,
    )
    assert loss.item() == pytest.approx(0.2725)
    assert clipfrac.item() == pytest.approx(0.5)


def test_adaptive_kl_controller():
    # coef * (1 + clip(kl / target - 1, -0.2, 0.2) * n_steps / horizon); target 6, horizon 10000, 64 completions
    step = {"target": 6.0, "horizon": 10000, "n_steps": 64}
    assert adaptive_kl_coef(0.1, 6.6, **step) == pytest.approx(0.1 * (1 + 0.1 * 0.0064))  # 0.100064: proportional
    assert adaptive_kl_coef(0.1, 9.0, **step) == pytest.approx(0.1 * (1 + 0.2 * 0.0064))  # error 0.5, clipped to 0.2
    assert adaptive_kl_coef(0.1, 3.0, **step) == pytest.approx(0.1 * (1 - 0.2 * 0.0064))  # error -0.5, clipped to -0.2
    assert adaptive_kl_coef(0.1, 6.0, **step) == pytest.approx(0.1)  # on target: unchanged
