"""The reward function online RL climbs: Plumb reward models scoring the policy's samples.

Each reward model tokenizes with its own tokenizer, so an encoder reward model (MiniLM)
scores a decoder policy's text. With several models (an ensemble) the reward is their
mean and their disagreement is logged, for the over-optimisation guard to watch.
"""

import numpy as np

from reward.score import load_reward_model, model_paths, score_conversations, trained_max_length

DISAGREEMENT = "reward_ensemble_std"
UNFINISHED = "unfinished_share"


def as_messages(value, role: str) -> list[dict]:
    """A prompt or completion as a message list (TRL passes plain strings for standard-format data)."""
    return value if isinstance(value, list) else [{"role": role, "content": value}]


def penalize_unfinished(rewards, completion_ids, stop_ids: set[int], penalty: float) -> tuple[np.ndarray, float]:
    """(rewards minus `penalty` where a completion's last token is no stop token, share of such completions)."""
    unfinished = np.array([not ids or ids[-1] not in stop_ids for ids in completion_ids], dtype=float)
    return np.asarray(rewards, dtype=float) - penalty * unfinished, float(unfinished.mean())


class RewardModels:
    """One or more trained reward models, loaded once: `score` judges conversations, and calling the object
    makes it a TRL reward function (the mean reward, minus a penalty for responses that never end).

    A class because the loaded models live here between calls.
    """

    def __init__(
        self, spec: str, *, stop_ids: set[int] = frozenset(), unfinished_penalty: float = 0.0, batch_size: int = 16
    ):
        self.__name__ = "reward_model"  # TRL names a reward function's logged metrics after it
        self.paths = model_paths(spec)
        self.models = [load_reward_model(path) for path in self.paths]
        self.max_lengths = [trained_max_length(path) for path in self.paths]
        self.stop_ids, self.unfinished_penalty, self.batch_size = stop_ids, unfinished_penalty, batch_size

    def score(self, conversations: list[list[dict]], *, progress: bool = False) -> np.ndarray:
        """Rewards (models, conversations): each model scores with its own tokenizer and trained max length."""
        return np.stack(
            [
                score_conversations(
                    model, conversations, max_length=length, batch_size=self.batch_size, progress=progress
                )
                for model, length in zip(self.models, self.max_lengths)
            ]
        )

    def __call__(self, prompts, completions, completion_ids=None, log_metric=None, **kwargs) -> list[float]:
        conversations = [as_messages(p, "user") + as_messages(c, "assistant") for p, c in zip(prompts, completions)]
        scores = self.score(conversations)
        rewards = scores.mean(axis=0)
        if log_metric is not None and len(self.models) > 1:
            log_metric(DISAGREEMENT, float(scores.std(axis=0).mean()))
        if completion_ids is not None:
            rewards, share = penalize_unfinished(rewards, completion_ids, self.stop_ids, self.unfinished_penalty)
            if log_metric is not None:
                log_metric(UNFINISHED, share)
        return rewards.tolist()
