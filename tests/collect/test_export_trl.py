"""Every training export, read back with `datasets.load_dataset(dir)` alone, trains one step of plain TRL.

No Plumb code between the export folder and the trainer: what a TRL user with a Plumb export does.
"""

import random

import datasets
import pytest

from collect.export import main as export_main
from collect.services.export.rows import ExportArguments
from collect.services.scheduling import next_task, submit_judgment
from collect.store import campaign_by_name, make_engine, rater_by_name, session_factory, upgrade
from tests.support.campaigns import seed_campaign, seed_raters

PROMPTS = 6


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """A SQLite campaign of 6 pairwise prompts, each judged by 2 raters who agree (strengths vary): its URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('trl') / 'collect.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=PROMPTS, raters_per_task=2, max_raters_per_task=2)
    for rater_name in seed_raters(sessions, 2):
        for i in range(PROMPTS):
            with sessions.begin() as session:
                campaign = campaign_by_name(session=session, name="demo")
                rater = rater_by_name(session=session, name=rater_name)
                assignment = next_task(session=session, campaign=campaign, rater=rater, rng=random.Random(i))
                submit_judgment(
                    session=session, rater=rater, assignment_id=assignment.id, preference=1 + i % 3, both_bad=False
                )
    engine.dispose()
    return url


def export(url, tmp_path, format):
    folder = tmp_path / format
    export_main(ExportArguments(campaign="demo", format=format, db=url, output_dir=str(folder), test_size=0.34))
    return datasets.load_dataset(str(folder))


def common(tmp_path):
    return {"output_dir": str(tmp_path / "run"), "max_steps": 1, "report_to": "none", "bf16": False, "use_cpu": True}


def test_the_pairwise_export_trains_trl_reward_and_dpo_and_holds_out_whole_prompts(judged, tmp_path, tiny_policy_dir):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    data = export(judged, tmp_path, "pairwise")
    assert set(data) == {"train", "test"} and len(data["train"]) + len(data["test"]) == PROMPTS
    held_out = {row["meta"]["prompt_id"] for row in data["test"]}
    assert held_out and not held_out & {row["meta"]["prompt_id"] for row in data["train"]}

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy_dir)
    reward = AutoModelForSequenceClassification.from_pretrained(tiny_policy_dir, num_labels=1)
    reward.config.pad_token_id = tokenizer.pad_token_id
    config = RewardConfig(**common(tmp_path), per_device_train_batch_size=2, max_length=64)
    trainer = RewardTrainer(model=reward, args=config, train_dataset=data["train"], processing_class=tokenizer)
    assert trainer.train().global_step == 1

    policy = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    config = DPOConfig(**common(tmp_path), per_device_train_batch_size=2, max_length=64)
    trainer = DPOTrainer(model=policy, args=config, train_dataset=data["train"], processing_class=tokenizer)
    assert trainer.train().global_step == 1


def test_the_kto_and_sft_exports_train_trl_kto_and_sft(judged, tmp_path, tiny_policy_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import KTOConfig, KTOTrainer, SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy_dir)
    kto = export(judged, tmp_path, "kto")
    labels = [row["label"] for split in kto.values() for row in split]
    assert labels.count(True) == labels.count(False) == PROMPTS  # each task: its chosen desirable, its rejected not
    config = KTOConfig(**common(tmp_path), per_device_train_batch_size=4, max_length=64)
    trainer = KTOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_policy_dir),
        args=config,
        train_dataset=kto["train"],
        processing_class=tokenizer,
    )
    assert trainer.train().global_step == 1

    sft = export(judged, tmp_path, "sft")
    assert sum(len(split) for split in sft.values()) == PROMPTS
    config = SFTConfig(**common(tmp_path), per_device_train_batch_size=2, max_length=64)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_policy_dir),
        args=config,
        train_dataset=sft["train"],
        processing_class=tokenizer,
    )
    assert trainer.train().global_step == 1


@pytest.mark.parametrize("loss", ["pairwise", "plackett_luce"])
def test_the_ranking_export_trains_plumb_reward_train(judged, tmp_path, tiny_reward_dir, loss):
    # TRL has no trainer for rankings: `plumb reward train` reads the export folder as it is, by both losses.
    from reward.train import main
    from tests.support.reward import reward_train_args

    ranking = export(judged, tmp_path, "ranking")
    rows = [row for split in ranking.values() for row in split]
    assert len(rows) == PROMPTS and all(sorted(row["ranks"]) == [1, 2] for row in rows)
    folder = str(tmp_path / "ranking")
    metrics = main(
        *reward_train_args(tmp_path / "out", tiny_reward_dir, "--dataset_name", folder, "--ranking_loss", loss)
    )
    assert metrics["eval_pairs"] == len(ranking["test"]) and metrics["train_rankings"] == len(ranking["train"])
