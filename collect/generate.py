"""Generate candidates: every policy of a campaign answers every prompt that has no answer from it yet.

A policy's `model` is anything `plumb.models.load_policy` loads (run locally with
transformers, batched, on the GPU when there is one), or the URL of an OpenAI-compatible
server (vLLM, TGI, llama.cpp: `http://host:8000/v1`), asked through `plumb.openai_client`
(API key, retries, concurrent requests; see its generation keys). Each batch is committed as it
finishes, so an interrupted run resumes where it stopped; the generation settings are
stored with every candidate. Tasks are built once every policy has answered.

    plumb collect generate --campaign demo --db campaign.sqlite --batch-size 8

With `--to FILE`, the campaign's prompts and all their candidates are then written to a JSONL
that `plumb collect import` reads into another database without generating again (how the
demo's candidates in plumb/assets/demo-candidates were made).
"""

import json

from collect.cli import verb_parser
from collect.services.generation import candidate_rows, generate_candidates
from collect.store import opened_store
from plumb.generation import Generator
from plumb.paths import write_whole


def cli(argv: list[str], *, prog: str) -> int:
    """Parse the campaign, policies and batch size, then generate."""
    parser = verb_parser(prog, __doc__)
    parser.add_argument("--campaign", required=True, help="name of a campaign created by `plumb collect import`")
    parser.add_argument("--policy", action="append", help="only this policy (repeatable; default: all of them)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="prompts per generate() call (default: 8); a URL policy sends a batch's requests at once, "
        "at most its generation key max_concurrency (default: 8) at a time",
    )
    parser.add_argument("--to", help="then write the prompts and their candidates to this JSONL (the import format)")
    args = parser.parse_args(argv)
    made = main(args.campaign, policies=args.policy, batch_size=args.batch_size, db=args.db)
    if args.to:
        made["written"] = write_candidates(args.campaign, args.to, db=args.db)
    print(json.dumps(made))
    return 0


def write_candidates(campaign_name: str, path: str, *, db: str | None = None) -> int:
    """Write the campaign's prompts with their candidates to the JSONL `path` (written whole, then renamed)."""
    with opened_store(db) as sessions, sessions() as session:
        rows = candidate_rows(session, campaign_name)
    # Whole or not at all: never a half-written file under the name a config points at.
    write_whole(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)


def main(
    campaign_name: str,
    *,
    policies: list[str] | None = None,
    batch_size: int = 8,
    db: str | None = None,
    generators: dict[str, Generator] | None = None,
) -> dict:
    """Generate what is missing for each policy and build the tasks; returns new candidates per policy and new tasks.

    `generators` replaces the generator of a policy by name (tests, custom backends).
    """
    return generate_candidates(campaign_name, policies=policies, batch_size=batch_size, db=db, generators=generators)
