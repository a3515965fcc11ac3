"""Rankings in `plumb reward train`: the Plackett-Luce loss worked by hand, and both ranking losses on tiny models."""

import json
import math

import numpy as np
import pytest
import torch

from plumb.config import ConfigError, parse_config
from plumb.data import ranking_pairs, rows_to_dataset, split_by_prompt
from reward.config import RewardScriptArguments
from reward.listwise import plackett_luce_nll
from reward.train import config_types, main
from tests.support.reward import HandScorer, reward_train_args


def nll(scores, ranks):
    return plackett_luce_nll(torch.tensor([scores], dtype=torch.float64), torch.tensor([ranks])).item()


# The loss, worked by hand


def test_plackett_luce_of_a_strict_order_is_the_sum_of_its_choices():
    # best (2) picked from {2, 1, 0}, then 1 from {1, 0}; the last pick is certain and adds nothing
    expected = -(2 - math.log(math.e**2 + math.e + 1)) - (1 - math.log(math.e + 1))
    assert nll([2.0, 1.0, 0.0], [1, 2, 3]) == pytest.approx(expected, abs=1e-12)
    # only the order counts, not the rank values, nor the completions' positions
    assert nll([0.0, 2.0, 1.0], [30, 1, 7]) == pytest.approx(expected, abs=1e-12)


def test_tied_completions_share_each_others_denominator():
    # ranks [1, 1, 2]: both tied ones are picked from all three (Breslow), then the last is certain
    lse_all = math.log(math.e + 1 + math.exp(-1))
    assert nll([1.0, 0.0, -1.0], [1, 1, 2]) == pytest.approx((lse_all - 1) + (lse_all - 0), abs=1e-12)
    # ranks [1, 2, 2]: the best from all three, then both tied ones from the two of them
    lse_low = math.log(1 + math.exp(-1))
    assert nll([1.0, 0.0, -1.0], [1, 2, 2]) == pytest.approx((lse_all - 1) + (lse_low - 0) + (lse_low + 1), abs=1e-12)
    # a tie of two: smallest (2 log 2) when the two rewards are equal
    assert nll([0.5, 0.5], [1, 1]) == pytest.approx(2 * math.log(2), abs=1e-12)
    assert nll([0.5, -0.5], [1, 1]) > 2 * math.log(2)


@pytest.mark.parametrize("better, worse", [(0.3, -1.2), (-2.0, 1.5), (4.0, 4.0)])
def test_a_ranking_of_two_is_bradley_terry(better, worse):
    bradley_terry = -torch.nn.functional.logsigmoid(torch.tensor(better - worse, dtype=torch.float64)).item()
    assert nll([better, worse], [1, 2]) == pytest.approx(bradley_terry, abs=1e-12)
    assert nll([worse, better], [2, 1]) == pytest.approx(bradley_terry, abs=1e-12)


def test_padded_batch_equals_each_ranking_alone_and_padding_gets_no_gradient():
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.7, -0.3, 123.0]], dtype=torch.float64, requires_grad=True)
    ranks = torch.tensor([[1, 2, 3], [2, 1, 0]])  # the second ranking has two completions, then padding
    mask = torch.tensor([[True, True, True], [True, True, False]])
    losses = plackett_luce_nll(scores, ranks, mask)
    assert losses[0].item() == pytest.approx(nll([2.0, 1.0, 0.0], [1, 2, 3]), abs=1e-12)
    assert losses[1].item() == pytest.approx(nll([0.7, -0.3], [2, 1]), abs=1e-12)
    losses.sum().backward()
    assert torch.isfinite(scores.grad).all() and scores.grad[1, 2] == 0


# Training on rankings with a tiny model


def message(role, text):
    return [{"role": role, "content": text}]


RANKINGS = [
    ("Capital of France?", ["Paris.", "Lyon, I think.", "Berlin."], [1, 2, 3]),  # 3 pairs
    ("Two plus two?", ["Four.", "Five.", "Twenty-two.", "Fish."], [1, 2, 2, 3]),  # 6 less the tie: 5 pairs
    ("Say thanks.", ["Thank you!", "No."], [1, 2]),  # 1 pair
    ("A colour?", ["Blue.", "Red.", "Seven."], [1, 1, 2]),  # 3 less the tie: 2 pairs
    ("Name a fruit.", ["Apple.", "Pear.", "Rock."], [1, 1, 1]),  # all tied: no pair
]
EXPANDED_PAIRS = 3 + 5 + 1 + 2 + 0


def ranking_rows(rankings):
    return [
        {"prompt": message("user", q), "completions": [message("assistant", c) for c in cs], "ranks": ranks}
        for q, cs, ranks in rankings
    ]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def reference_nll(scores, ranks):
    # Plackett-Luce picked level by level: every completion of a level is chosen from all not yet placed
    total = 0.0
    for level in sorted(set(ranks)):
        pool = [s for s, r in zip(scores, ranks) if r >= level]
        total += sum(math.log(sum(math.exp(p) for p in pool)) - s for s, r in zip(scores, ranks) if r == level)
    return total


def expanded(rows):
    return [
        {"prompt": row["prompt"], "chosen": row["completions"][i], "rejected": row["completions"][j]}
        for row in rows
        for i, j in ranking_pairs(row["ranks"])
    ]


def one_step(tmp_path, model_dir, data, rows_in_batch, *flags):
    # one step on one batch of every row: the reported loss is the loss before the step
    batch = ["--test_size", "0", "--max_steps", "1", "--per_device_train_batch_size", str(rows_in_batch)]
    return main(*reward_train_args(tmp_path / "out", model_dir, "--dataset_name", str(data), *batch, *flags))


def test_plackett_luce_trains_on_whole_rankings(tmp_path, spread_reward_dir):
    rows = ranking_rows(RANKINGS)
    data = write_jsonl(tmp_path / "rankings.jsonl", rows)
    metrics = one_step(tmp_path, spread_reward_dir, data, len(rows), "--ranking_loss", "plackett_luce")

    score = HandScorer(spread_reward_dir, tmp_path / "out", max_length=64)
    losses = [reference_nll([score(row["prompt"] + c) for c in row["completions"]], row["ranks"]) for row in rows]
    assert metrics["train_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert metrics["ranking_loss"] == "plackett_luce"
    assert metrics["train_rankings"] == 5 and metrics["train_completions"] == 3 + 4 + 2 + 3 + 3


def test_pairwise_loss_trains_on_the_expanded_pairs(tmp_path, spread_reward_dir):
    rows = ranking_rows(RANKINGS)
    data = write_jsonl(tmp_path / "rankings.jsonl", rows)
    metrics = one_step(tmp_path, spread_reward_dir, data, EXPANDED_PAIRS)  # ranking_loss: pairwise, the default

    pairs = expanded(rows)
    assert len(pairs) == EXPANDED_PAIRS
    chosen, rejected = HandScorer(spread_reward_dir, tmp_path / "out", max_length=64).pairs(pairs)
    assert metrics["train_loss"] == pytest.approx(np.mean(np.log1p(np.exp(-(chosen - rejected)))), rel=1e-5)
    assert metrics["train_pairs"] == EXPANDED_PAIRS and metrics["train_rankings"] == 5


def test_pairs_under_plackett_luce_train_as_bradley_terry(tmp_path, spread_reward_dir):
    pairs = expanded(ranking_rows(RANKINGS))
    data = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    listwise = one_step(tmp_path / "pl", spread_reward_dir, data, len(pairs), "--ranking_loss", "plackett_luce")
    pairwise = one_step(tmp_path / "bt", spread_reward_dir, data, len(pairs))
    assert listwise["train_loss"] == pytest.approx(pairwise["train_loss"], rel=1e-5)
    assert listwise["train_rankings"] == len(pairs) and listwise["train_completions"] == 2 * len(pairs)


def test_plackett_luce_is_evaluated_on_the_held_out_rankings_pairs(tmp_path, tiny_reward_dir):
    rows = ranking_rows(
        [(f"Say {i}.", [f"{i}.", f"{i}? Maybe.", "No."], [1, 2, 3]) for i in range(8)]
        + [(f"Spell {i}.", [f"{i}", "Nope."], [1, 2]) for i in range(4)]
    )
    data = write_jsonl(tmp_path / "rankings.jsonl", rows)
    flags = ["--dataset_name", str(data), "--test_size", "0.3", "--ranking_loss", "plackett_luce"]
    every_step = ["--eval_strategy", "steps", "--eval_steps", "1"]  # TRL's own pairwise evaluation between steps
    metrics = main(*reward_train_args(tmp_path / "out", tiny_reward_dir, *flags, *every_step))

    train, held_out = split_by_prompt(rows_to_dataset(rows), test_size=0.3, seed=0)
    pairs = expanded(list(held_out))
    assert metrics["train_rankings"] == len(train) and metrics["eval_rankings"] == len(held_out)
    assert metrics["eval_pairs"] == len(pairs) > 0
    report = json.loads((tmp_path / "out" / "eval_report.json").read_text())
    assert report["pairs"] == len(pairs)
    chosen, rejected = HandScorer(tmp_path / "out", max_length=64).pairs(pairs)
    slack = int((np.abs(chosen - rejected) < 1e-6).sum())
    assert metrics["eval_accuracy"] == pytest.approx(np.mean(chosen > rejected), abs=slack / len(pairs) + 1e-12)


def test_unknown_ranking_loss_is_refused_by_name(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("ranking_loss: listnet\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: key 'ranking_loss'.*pairwise, plackett_luce"):
        parse_config(config_types(), ["--config", str(config), "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="ranking_loss must be one of pairwise, plackett_luce, got 'listnet'"):
        RewardScriptArguments(ranking_loss="listnet")
