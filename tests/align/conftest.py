"""Models for the align tests whose figures can be told apart: a judge whose scores spread, a policy's perturbed copy.

The shared tiny reward model (initialised with std 0.02) gives nearly the same score to every
text, so a shuffled, averaged or zeroed score would pass unnoticed; these judges are
initialised wide enough that each text gets its own score.
"""

import pytest

from tests.support.models import save_tiny_reward


@pytest.fixture(scope="session")
def judge_dirs(tmp_path_factory, plumb_home):
    """Two random BERT reward models (different seeds) whose scores differ from text to text and from each other."""
    return [
        save_tiny_reward(tmp_path_factory.mktemp(f"judge{seed}"), seed=seed, initializer_range=0.5) for seed in (1, 2)
    ]


@pytest.fixture(scope="session")
def perturbed_policy_dir(tmp_path_factory, tiny_policy_dir):
    """The tiny policy with noise added to every weight and its (tied) embeddings scaled up: a different model, with
    sharper next-token distributions (so KL in one direction differs from the other), and the same tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from plumb.models import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for weight in model.parameters():
            weight.add_(0.05 * torch.randn_like(weight))
        model.get_input_embeddings().weight.mul_(10.0)
    path = tmp_path_factory.mktemp("perturbed_policy")
    model.save_pretrained(path)
    load_tokenizer(tiny_policy_dir).save_pretrained(path)
    return str(path)
