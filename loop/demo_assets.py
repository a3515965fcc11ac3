"""Build the loop demo's shipped data, plumb/assets/hh-harmless/, from Anthropic's hh-rlhf harmless pairs.

Reads a file in the layout of ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz (gzipped JSON
Lines; `chosen` and `rejected` are whole "\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts that
differ only in the last assistant turn) and writes, in Plumb's data contract:

- prompts-train.jsonl, prompts-test.jsonl: single-turn prompts for the loop's rounds and for
  its held-out evaluation, the opening human turns of multi-turn conversations (short ones);
- gold-train.jsonl, gold-test.jsonl: the human pairs the gold judge learns from and is checked
  on (split by opening turn), leaving out every pair whose opening human turn is a shipped
  prompt, so the judge never saw a demo prompt;
- LICENSE (MIT, copied from beside the data file) and README.md (attribution and counts).

Same input, same output: every choice is seeded. Run from the repository root:

    python -m loop.demo_assets --data ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz
"""

import argparse
import gzip
import hashlib
import json
import random
import shutil
from pathlib import Path

from plumb.implicit_prompt import explicit_pair

ASSETS = Path(__file__).resolve().parents[1] / "plumb" / "assets" / "hh-harmless"
SEED = 0
PROMPTS_TRAIN = 300
PROMPTS_TEST = 120
PROMPT_CHARS = (20, 300)  # shorter openers are mostly greetings ("Hi"); longer ones slow generation
GOLD_TEST_SHARE = 0.18
ORIGIN = "anthropics/hh-rlhf, harmless-base/test.jsonl.gz, commit 0398e36 (MIT)"


# Reading hh-rlhf


def to_pair(record: dict) -> dict:
    """A contract pair: the turns both transcripts share are the prompt, the last assistant turns the responses."""
    pair = explicit_pair(record)
    return {"prompt": pair["prompt"], "chosen": pair["chosen"], "rejected": pair["rejected"]}


def read_pairs(path: Path) -> tuple[list[dict], int]:
    """The contract pairs of an hh-rlhf file, and how many were left out for an empty reply."""
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8") as handle:
        pairs = [to_pair(json.loads(line)) for line in handle if line.strip()]
    kept = [
        pair
        for pair in pairs
        if all("".join(m["content"] for m in pair[side]).strip() for side in ("chosen", "rejected"))
    ]
    return kept, len(pairs) - len(kept)


def normalise(text: str) -> str:
    """The form two prompts are compared in: lower case, runs of whitespace as one space."""
    return " ".join(text.lower().split())


def opening_turn(pair: dict) -> str:
    """The normalised first human turn of a pair's conversation."""
    return normalise(next(m["content"] for m in pair["prompt"] if m["role"] == "user"))


# Choosing


def choose_prompts(pairs: list[dict], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """(train, test) prompt rows: distinct short opening turns of multi-turn conversations, in seeded order.

    Opening turns of multi-turn conversations are whole questions by themselves; drawing
    them there leaves every single-turn pair (the shape the judge will score) to the judge.
    """
    low, high = PROMPT_CHARS
    openings = {}
    for pair in pairs:
        text = pair["prompt"][0]["content"]
        if len(pair["prompt"]) > 1 and low <= len(text) <= high:
            openings.setdefault(normalise(text), text)
    keys = sorted(openings)
    rng.shuffle(keys)
    rows = [
        {
            "prompt": [{"role": "user", "content": openings[key]}],
            "prompt_id": "hh-" + hashlib.sha1(key.encode()).hexdigest()[:10],
        }
        for key in keys
    ]
    return rows[:PROMPTS_TRAIN], rows[PROMPTS_TRAIN : PROMPTS_TRAIN + PROMPTS_TEST]


def split_gold(pairs: list[dict], shipped: set[str], rng: random.Random) -> tuple[list[dict], list[dict], int]:
    """(train, test, left out): the pairs whose opening turn is no shipped prompt, split by opening turn."""
    gold = [pair for pair in pairs if opening_turn(pair) not in shipped]
    keys = sorted({opening_turn(pair) for pair in gold})
    rng.shuffle(keys)
    test_keys = set(keys[: round(GOLD_TEST_SHARE * len(keys))])
    test = [pair for pair in gold if opening_turn(pair) in test_keys]
    train = [pair for pair in gold if opening_turn(pair) not in test_keys]
    return train, test, len(pairs) - len(gold)


# Writing


def write_jsonl(rows: list[dict], path: Path) -> None:
    """One JSON object a line, UTF-8 kept readable."""
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def build(data: Path, out: Path = ASSETS) -> dict:
    """Write the four splits, LICENSE and README.md into `out`; returns the counts."""
    pairs, empty = read_pairs(data)
    rng = random.Random(SEED)
    prompts_train, prompts_test = choose_prompts(pairs, rng)
    shipped = {normalise(row["prompt"][0]["content"]) for row in prompts_train + prompts_test}
    gold_train, gold_test, left_out = split_gold(pairs, shipped, rng)
    splits = {
        "prompts-train": prompts_train,
        "prompts-test": prompts_test,
        "gold-train": gold_train,
        "gold-test": gold_test,
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_jsonl(rows, out / f"{name}.jsonl")
    shutil.copyfile(data.parent / "LICENSE", out / "LICENSE")
    counts = {name: len(rows) for name, rows in splits.items()}
    counts.update(
        source_pairs=len(pairs) + empty,
        empty_reply=empty,
        shared_opening=left_out,
        single_turn_gold=sum(len(p["prompt"]) == 1 for p in gold_train + gold_test),
    )
    (out / "README.md").write_text(readme(counts), encoding="utf-8")
    return counts


def readme(counts: dict) -> str:
    """The attribution, content warning and what each file holds, with its counts."""
    return f"""# hh-harmless: the loop demo's prompts and gold-judge pairs

**Content warning:** red-team conversations. Many prompts ask for harmful, hateful, sexual or
illegal help, in offensive words; they are here so a policy can learn to answer them harmlessly.

Source: Anthropic's hh-rlhf ([anthropics/hh-rlhf](https://github.com/anthropics/hh-rlhf)),
file `harmless-base/test.jsonl.gz`, commit 0398e36, under the MIT license (`LICENSE`, copied
beside these files). Paper: Bai et al. 2022, "Training a Helpful and Harmless Assistant with
Reinforcement Learning from Human Feedback". Each pair is one crowdworker's choice of the more
harmless of two assistant replies.

Built by `python -m loop.demo_assets --data ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz` from
{counts["source_pairs"]:,} of its pairs ({counts["empty_reply"]} left out for an empty reply); same input, same output.
Read with `plumb.data.load_contract("builtin:hh-harmless", kind, split=FILE_STEM)`.

| file | kind | rows | what |
|---|---|---|---|
| `prompts-train.jsonl` | prompts | {counts["prompts-train"]} | prompts the loop's rounds draw from |
| `prompts-test.jsonl` | prompts | {counts["prompts-test"]} | held-out prompts of the loop's evaluation |
| `gold-train.jsonl` | pairwise | {counts["gold-train"]} | human pairs the gold judge is trained on |
| `gold-test.jsonl` | pairwise | {counts["gold-test"]} | human pairs the gold judge is checked on |

Prompts (`prompt_id` is `hh-` and a hash of the normalised text): distinct opening human turns
of multi-turn conversations, {PROMPT_CHARS[0]} to {PROMPT_CHARS[1]} characters, in seeded random order; each is
asked as a single-turn prompt.

Pairs: `prompt` is the conversation both transcripts share, `chosen` and `rejected` the last
assistant turns. Every pair whose opening human turn equals a shipped prompt (lower case,
whitespace collapsed) is left out ({counts["shared_opening"]} pairs), so the gold judge never saw a demo
prompt and the loop never trains on the judge's pairs. The rest are split by opening turn,
about {GOLD_TEST_SHARE:.0%} of them held out; {counts["single_turn_gold"]} of the pairs are single-turn.
"""


def main(argv: list[str] | None = None) -> dict:
    """Parse `--data` (and `--out`), build, print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="hh-rlhf pairs (.jsonl.gz), its LICENSE beside it")
    parser.add_argument("--out", type=Path, default=ASSETS, help="where to write (default: plumb/assets/hh-harmless)")
    args = parser.parse_args(argv)
    counts = build(args.data, args.out)
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    main()
