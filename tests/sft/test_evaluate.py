"""`plumb sft eval` on a tiny policy: the perplexity of the reference answers against the model's own logits, the
text metrics against evaluate's scripts run on the answers it wrote, and a metric that needs a download refused
before any model loads."""

import json
import math

import pytest
from transformers import AutoModelForCausalLM

from plumb import task_metrics
from plumb.config import ConfigError, parse_config
from plumb.models import load_tokenizer
from sft.evaluate import config_types, main
from tests.support.worked import assistant_nll

CONVERSATIONS = [
    ("What is the capital of Italy?", "Rome."),
    ("How many legs has a spider?", "Eight legs."),
    ("Describe snow.", "Snow is frozen water that falls as soft white flakes in cold weather."),
    ("Say hi.", "Hi!"),
]


def write_conversations(path):
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in CONVERSATIONS
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return rows


def eval_args(tmp_path, model_dir, *flags):
    argv = [
        *("--model_name_or_path", model_dir, "--dataset_name", str(tmp_path / "test.jsonl")),
        *("--max_new_tokens", "5", "--bootstrap_samples", "60", "--seed", "3"),
        *("--output_dir", str(tmp_path / "eval"), *flags),
    ]
    return parse_config(config_types(), argv)


@pytest.mark.slow
def test_the_report_holds_each_metric_of_the_answers_it_wrote(tmp_path, default_policy_dir):
    # The real default policy: its answers share words with the references (a random one writes newlines only)
    rows = write_conversations(tmp_path / "test.jsonl")
    report = main(*eval_args(tmp_path, default_policy_dir, "--max_new_tokens", "16"))

    # Perplexity: the reference answers' tokens under the model, pooled over all of them
    model, tokenizer = AutoModelForCausalLM.from_pretrained(default_policy_dir), load_tokenizer(default_policy_dir)
    total, count = assistant_nll(model, tokenizer, rows)
    assert report["reference_tokens"] == count
    assert report["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
    low, high = report["perplexity_ci95"]
    assert low < report["perplexity"] < high

    # The text metrics of the answers it wrote down, recomputed here on those answers
    written = [json.loads(line) for line in (tmp_path / "eval" / "answers.jsonl").read_text().splitlines()]
    references = [a for _, a in CONVERSATIONS]
    assert [w["reference"] for w in written] == references
    again = task_metrics.text_metrics(
        [w["answer"] for w in written], references, names=["rouge_l", "bleu", "exact_match"], samples=60, seed=3
    )
    assert report["rouge_l"] > 0 and report["bleu"] > 0
    for key, value in again.items():
        assert report[key] == pytest.approx(value), key
    assert len((tmp_path / "eval" / "samples.md").read_text().splitlines()) == 2 + 4
    # Three references have at most 5 words; the fourth is a sentence
    assert report["exact_match_examples"] == 3 and report["examples"] == 4
    assert json.loads((tmp_path / "eval" / "report.json").read_text()) == report
    assert (tmp_path / "eval" / "task_metrics.png").stat().st_size > 0


def test_perplexity_alone_generates_nothing(tmp_path, tiny_policy_dir):
    write_conversations(tmp_path / "test.jsonl")
    report = main(*eval_args(tmp_path, tiny_policy_dir, "--metrics", "perplexity", "--max_examples", "2"))
    assert report["examples"] == 2 and "rouge_l" not in report and "bleu" not in report
    assert not (tmp_path / "eval" / "samples.md").exists() and not (tmp_path / "eval" / "answers.jsonl").exists()


def test_a_metric_that_needs_a_download_is_refused_before_the_model_loads(tmp_path):
    write_conversations(tmp_path / "test.jsonl")
    # The model does not exist: the error is about the metric, so it came first
    args = eval_args(tmp_path, str(tmp_path / "no-such-model"), "--metrics", "rouge_l", "bertscore")
    with pytest.raises(ConfigError, match=r"key 'metrics': 'bertscore' is not a metric Plumb ships"):
        main(*args)
