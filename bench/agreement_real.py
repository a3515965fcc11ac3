"""Agreement, per-annotator figures, aggregation and a leaderboard on published human judgments.

Reads a file in the PandaLM layout (a JSON array, or JSON lines, of items with `idx`,
`cmp_key` "modelA_modelB", `response1`, `response2` and annotator columns `annotator1..K`
holding 0 = tie, 1 = response1 better, 2 = response2 better), e.g. PandaLM's test set:

    .venv/bin/python bench/agreement_real.py --data ../shared/data/pandalm/judgments.json

raw_agreement: for each pair of annotator columns, the share of items where the two agree
(a tie is a label), then the mean over the pairs; raw_agreement_no_ties: the same counting,
for each pair, only items where neither of the two said tie. Prints the figures, then one JSON line.
"""

import argparse
import json
import re
from pathlib import Path

import numpy as np

from collect.domain.quality.aggregate import contested_items, dawid_skene, majority_vote
from collect.domain.quality.agreement import agreement_summary
from collect.domain.quality.judgments import judgment_table
from collect.domain.quality.raters import rater_report
from collect.services.arena.ratings import count_battles, leaderboard, leaderboard_table

CHOICE = {0: "tie", 1: "left", 2: "right"}  # PandaLM's codes; response1 is shown first (left)
ORDINAL = {1: -1.0, 0: 0.0, 2: 1.0}  # response1 better < tie < response2 better
WINNER = {1: "model_a", 2: "model_b", 0: "tie"}


def read_items(path: Path) -> list[dict]:
    """The items of a JSON array or JSON-lines file."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def annotator_columns(items: list[dict]) -> list[str]:
    """The `annotatorN` keys, in numeric order."""
    names = {key for item in items for key in item if re.fullmatch(r"annotator\d+", key)}
    return sorted(names, key=lambda name: int(name[len("annotator") :]))


def label_matrices(items: list[dict], annotators: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(nominal, ordinal) labels (items, annotators): PandaLM's codes, and the same on a -1..1 scale; NaN missing."""
    codes = np.array([[np.nan if item.get(a) is None else float(item[a]) for a in annotators] for item in items])
    ordinal = np.full_like(codes, np.nan)
    for code, value in ORDINAL.items():
        ordinal[codes == code] = value
    return codes, ordinal


def judgment_records(items: list[dict], annotators: list[str]) -> list[dict]:
    """One judgment record per (item, annotator), response lengths in characters."""
    records = []
    for item in items:
        for annotator in annotators:
            if item.get(annotator) is None:
                continue
            records.append(
                {
                    "rater": annotator,
                    "item": str(item["idx"]),
                    "left": f"{item['idx']}/response1",
                    "right": f"{item['idx']}/response2",
                    "choice": CHOICE[int(item[annotator])],
                    "left_length": _length(item["response1"]),
                    "right_length": _length(item["response2"]),
                }
            )
    return records


def _length(response) -> int | None:
    # A few PandaLM responses are not text (e.g. `false`): their length is unknown, not zero
    return len(response) if isinstance(response, str) else None


def print_agreement(summary: dict) -> None:
    """The agreement figures, one per line."""
    print(f"{summary['items']} items, {summary['raters']} annotators")
    for name in (
        "raw_agreement",
        "raw_agreement_no_ties",
        "fleiss_kappa",
        "krippendorff_alpha_nominal",
        "krippendorff_alpha_ordinal",
    ):
        print(f"  {name:<28} {summary[name]:.4f}")
    for pair in summary["cohen_kappa_pairs"]:
        print(f"  cohen_kappa {pair['rater_a']}-{pair['rater_b']:<12} {pair['kappa']:.4f}  ({pair['shared']} items)")


def print_annotators(rows: list[dict]) -> None:
    """Per-annotator tie rate, position and length bias, agreement with the other two."""
    print(f"\n{'annotator':<12} {'ties':>6} {'resp1 wins':>10} {'p(50%)':>9} {'longer wins':>11} {'w/ others':>9}")
    for row in rows:
        print(
            f"{row['rater']:<12} {row['tie_rate']:6.1%} {row['left_win_rate']:10.1%} {row['position_p_value']:9.2g} "
            f"{row['length_bias']:11.1%} {row['consensus_agreement']:9.1%}"
        )


def main() -> None:
    """Print the agreement figures, the annotator table, aggregation and leaderboard, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="a file in the PandaLM layout")
    parser.add_argument("--min_agreement", type=float, default=0.67, help="support below which an item is contested")
    args = parser.parse_args()

    items = read_items(args.data)
    annotators = annotator_columns(items)
    labels, ordinal = label_matrices(items, annotators)

    # Agreement
    summary = agreement_summary(labels, ordinal, annotators, tie=0, min_shared=10)
    print_agreement(summary)

    # Annotators
    print_annotators(rater_report(judgment_table(judgment_records(items, annotators), source=str(args.data))))

    # Aggregation: majority vote against Dawid-Skene
    vote, support = majority_vote(labels)
    fitted = dawid_skene(labels)
    contested = contested_items(vote, support, min_agreement=args.min_agreement)
    decided = ~np.isnan(vote)
    same = float((fitted["consensus"][decided] == vote[decided]).mean())
    print(
        f"\nmajority vote: {int(decided.sum())} items decided, {int(contested.sum())} below {args.min_agreement:.0%} "
        f"support; Dawid-Skene agrees with the vote on {same:.1%} of the decided items"
    )

    # Leaderboard of the source models from the majority verdict of each item (no majority: a tie)
    pairs = [item["cmp_key"].split("_") for item in items]
    winners = [WINNER[0 if np.isnan(v) else int(v)] for v in vote]
    board = leaderboard(count_battles([a for a, _ in pairs], [b for _, b in pairs], winners, source=str(args.data)))
    print(f"\nleaderboard from the {len(items)} majority verdicts (cmp_key: response1's model _ response2's model)")
    print(leaderboard_table(board))

    print(
        json.dumps(
            {
                "items": summary["items"],
                "annotators": summary["raters"],
                "fleiss_kappa": summary["fleiss_kappa"],
                "krippendorff_alpha_nominal": summary["krippendorff_alpha_nominal"],
                "krippendorff_alpha_ordinal": summary["krippendorff_alpha_ordinal"],
                "raw_agreement": summary["raw_agreement"],
                "raw_agreement_no_ties": summary["raw_agreement_no_ties"],
                "cohen_kappa": {f"{p['rater_a']}-{p['rater_b']}": p["kappa"] for p in summary["cohen_kappa_pairs"]},
                "dawid_skene_agrees_with_majority": same,
                "contested_items": int(contested.sum()),
                "leaderboard": {
                    policy: round(float(rating), 1) for policy, rating in zip(board.policies, board.ratings)
                },
            }
        )
    )


if __name__ == "__main__":
    main()
