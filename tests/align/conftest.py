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


@pytest.fixture(scope="session")
def decoder_reward_dir(tmp_path_factory, tiny_policy_dir):
    """A tiny Llama reward model (one-output head) reading the policy's own tokenizer: a critic can start from it."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    config = AutoConfig.from_pretrained(tiny_policy_dir)
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = LlamaForSequenceClassification(config)
    path = tmp_path_factory.mktemp("decoder_reward")
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_policy_dir).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def seeded_policy_dir(tmp_path_factory, tiny_policy_dir):
    """The tiny policy's architecture with fixed weights (seed 0), for tests whose figures hang on the weights: the
    session's `tiny_policy_dir` is drawn anew in every run."""
    from plumb.models import load_tokenizer
    from tests.support.models import save_tiny_policy

    return save_tiny_policy(tmp_path_factory.mktemp("seeded_policy"), load_tokenizer(tiny_policy_dir), seed=0)


@pytest.fixture(scope="session")
def seeded_reward_dir(tmp_path_factory):
    """The tiny reward model with fixed weights (seed 0), the partner of `seeded_policy_dir`."""
    from tests.support.models import save_tiny_reward

    return save_tiny_reward(tmp_path_factory.mktemp("seeded_reward"), seed=0)
