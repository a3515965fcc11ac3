"""Task metrics: evaluate's ROUGE-L, BLEU and exact match against values worked by hand, the pooled perplexity of
reference answers against the model's own loss, bootstrap intervals against resamples drawn here, and metrics
that would need a download refused."""

import math

import numpy as np
import pytest

from plumb import task_metrics
from plumb.config import ConfigError
from plumb.stats import bootstrap_statistic_ci, resample_indices


def test_rouge_l_is_the_f_measure_of_the_longest_common_subsequence():
    # "the cat sat on the mat" vs "the cat is on the mat": LCS the-cat-on-the-mat, 5 of 6 words each way: F = 5/6.
    # "hello there" vs "hello there general kenobi": LCS 2, precision 2/2, recall 2/4: F = 2 * 1 * .5 / 1.5 = 2/3.
    scores = task_metrics.rouge_l(
        ["the cat sat on the mat", "hello there"], ["the cat is on the mat", "hello there general kenobi"]
    )
    assert scores == pytest.approx([5 / 6, 2 / 3])


def test_bleu_is_a_corpus_figure_not_a_mean_of_sentences():
    # Pooled n-gram matches over both answers: 1-grams 4+1 of 8, 2-grams 3 of 6, 3-grams 2 of 4, 4-grams 1 of 2;
    # equal lengths, so no brevity penalty: BLEU = 100 * (5/8 * 1/2 * 1/2 * 1/2) ** (1/4). The second answer alone
    # has no matching 2-gram (sentence BLEU 0), so a mean of sentence scores would give 50.
    bleu = task_metrics.corpus_bleu(["a b c d", "a x y z"], ["a b c d", "a e f g"])
    assert bleu(np.arange(2)) == pytest.approx(100 * (5 / 8 * 1 / 2 * 1 / 2 * 1 / 2) ** 0.25)
    # One short answer: every n-gram matches, brevity penalty exp(1 - 6/5)
    short = task_metrics.corpus_bleu(["a b c d e"], ["a b c d e f"])
    assert short([0]) == pytest.approx(100 * math.exp(1 - 6 / 5))


def test_exact_match_counts_short_answers_only_ignoring_case_punctuation_and_space():
    predictions = ["Paris.", " 42 ", "blue whale", "a long answer"]
    references = ["paris", "42", "the blue whale", "a long reference with many more words than five"]
    report = task_metrics.text_metrics(predictions, references, names=["exact_match"], samples=50, seed=0)
    # The last reference has 9 words: not a short answer. Of the other three, the first two match.
    assert report["exact_match_examples"] == 3 and report["exact_match"] == pytest.approx(2 / 3)
    assert "rouge_l" not in report and "bleu" not in report
    assert task_metrics.format_metrics(report).startswith("exact_match              0.667  (95% CI ")
    none = task_metrics.text_metrics(["x"], ["a long reference of many words"], names=["exact_match"], samples=5)
    assert none == {"exact_match_examples": 0}
    assert task_metrics.format_metrics(none) == "exact_match              none: no reference is a short answer"


def test_intervals_are_the_percentiles_of_the_metric_on_resamples_drawn_here():
    import sacrebleu

    predictions = ["the cat sat", "a dog ran home", "it is blue", "one two three four", "red"]
    references = ["the cat sat down", "a dog ran", "it was blue", "one two three four", "green"]
    report = task_metrics.text_metrics(predictions, references, names=["bleu", "rouge_l"], samples=40, seed=7)
    picks = np.random.default_rng(7).integers(0, 5, size=(40, 5))
    # BLEU of each resample straight from sacrebleu, not through evaluate
    bleus = [sacrebleu.corpus_bleu([predictions[i] for i in p], [[references[i] for i in p]]).score for p in picks]
    assert report["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predictions, [references]).score)
    assert report["bleu_ci95"] == pytest.approx(np.quantile(bleus, [0.025, 0.975]).tolist())
    rouge = task_metrics.rouge_l(predictions, references)
    assert report["rouge_l_ci95"] == pytest.approx(np.quantile(rouge[picks].mean(axis=1), [0.025, 0.975]).tolist())


def test_pooled_perplexity_weighs_examples_by_their_tokens():
    # 1 nat over 1 token and 6 over 3: exp(7 / 4) = 5.75; the mean of per-example perplexities, (e + e^2) / 2,
    # is 5.05, and exp of the mean per-example loss, exp(1.5), is 4.48
    report = task_metrics.perplexity_report([1.0, 6.0], [1, 3], samples=30, seed=4)
    assert report["perplexity"] == pytest.approx(math.exp(7 / 4)) and report["reference_tokens"] == 4
    nll, tokens = np.array([1.0, 6.0]), np.array([1.0, 3.0])
    by_hand = [math.exp(nll[p].sum() / tokens[p].sum()) for p in resample_indices(2, samples=30, seed=4)]
    assert report["perplexity_ci95"] == pytest.approx(np.quantile(by_hand, [0.025, 0.975]).tolist())


def test_reference_likelihood_is_the_models_own_loss_on_the_answer_tokens(tiny_policy_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from plumb.models import load_tokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).eval(), load_tokenizer(tiny_policy_dir)
    prompts = [[{"role": "user", "content": "Name a colour."}], [{"role": "user", "content": "2 + 2?"}]]
    references = ["Blue.", "It is 4, since two and two make four."]
    nll, tokens = task_metrics.reference_log_likelihoods(model, tokenizer, prompts, references)
    for k, (prompt, reference) in enumerate(zip(prompts, references)):
        context = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
        full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": reference}], return_dict=False)
        labels = torch.tensor([[-100] * len(context) + full[len(context) :]])
        with torch.no_grad():
            mean_loss = model(input_ids=torch.tensor([full]), labels=labels).loss.item()  # HF's own shifted loss
        assert tokens[k] == len(full) - len(context) > len(tokenizer(reference, add_special_tokens=False).input_ids)
        assert nll[k] == pytest.approx(mean_loss * tokens[k], rel=1e-5)


def test_statistic_interval_uses_the_resamples_of_the_mean_interval():
    # The same draws serve a mean and any other statistic: the mean via the general route matches bootstrap_ci
    from plumb.stats import bootstrap_ci

    values = np.array([0.0, 1.0, 1.0, 3.0, 5.0])
    general = bootstrap_statistic_ci(5, lambda p: values[p].mean(), samples=200, seed=2)
    assert general == pytest.approx(bootstrap_ci(values, samples=200, seed=2))
    assert all(math.isnan(b) for b in bootstrap_statistic_ci(0, lambda p: 0.0))


def test_a_metric_that_needs_a_download_is_refused_with_the_key_named():
    assert task_metrics.check_metrics(["bleu", "perplexity"]) == ["bleu", "perplexity"]
    with pytest.raises(ConfigError, match=r"key 'metrics': 'meteor' is not a metric Plumb ships .*download.*offline"):
        task_metrics.check_metrics(["rouge_l", "meteor"])


def test_conversations_give_their_last_answer_as_the_reference():
    from plumb.data import DataError

    records = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
    ]
    prompts, references = task_metrics.conversations_to_references(records, where="f.jsonl")
    assert prompts == [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "a"}]]
    assert references == ["hello", "b"]
    records.append({"messages": [{"role": "user", "content": "unanswered"}]})
    with pytest.raises(DataError, match=r"f.jsonl row 2: key 'messages' must end with an assistant answer"):
        task_metrics.conversations_to_references(records, where="f.jsonl")
