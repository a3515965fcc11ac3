"""Alignment: DPO and PPO-style online RL against a reward model, best-of-n, evaluation."""
