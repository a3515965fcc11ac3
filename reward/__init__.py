"""Reward models: train, evaluate, score and share (TRL RewardTrainer)."""
