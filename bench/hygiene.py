"""What the data-hygiene rules find in real preference data, and how long each takes per 10,000 rows.

Reads each source the way `plumb collect import` does (hh-rlhf pairs, OpenAssistant trees, any
import format), turns its rows into hygiene rows, then runs every rule on its own, timed:

    .venv/bin/python bench/hygiene.py --data ../shared/data/hh-rlhf-harmless ../shared/data/oasst --language en

A folder stands for the one data file inside it. The near-duplicate rule is timed in two
parts: MiniLM's embeddings of the prompts (the model load is reported apart, once) and the
similarity search; its counts are also given at other thresholds (--thresholds). Time per 10k
rows is the measured time scaled by 10,000 / rows. Prints a table per source, then one JSON line.
"""

import argparse
import json
import time
from pathlib import Path

from collect.domain import hygiene
from collect.domain.foreign import convert_records
from collect.services.hygiene import (
    completion_text,
    detect_language,
    embed_texts,
    embedding_text,
    known_languages,
    sentence_encoder,
)
from collect.services.import_rows import read_rows, read_source

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv")


def data_file(path: Path) -> Path:
    """The file itself, or the one data file in a folder."""
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.name.endswith(DATA_SUFFIXES))
    if len(found) != 1:
        raise SystemExit(f"{path}: expected one data file ({', '.join(DATA_SUFFIXES)}), found {len(found)}")
    return found[0]


def load_rows(path: Path, limit: int | None) -> tuple[str, list[hygiene.Row]]:
    """(source format, hygiene rows) of a source, read and converted as the import reads it."""
    source = str(path)
    conversion = convert_records(read_source(source, "train"), source=source)
    rows = read_rows(conversion.rows[:limit] if limit else conversion.rows, source=source)
    return conversion.format, [
        hygiene.Row(row.messages, [completion_text(c[1]) for c in row.candidates], label=f"row {i}")
        for i, row in enumerate(rows)
    ]


def timed(function, *args, **kwargs):
    """(result, seconds) of one call."""
    began = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - began


def measure(rows: list[hygiene.Row], settings: hygiene.HygieneSettings, thresholds: list[float]) -> dict:
    """Findings and seconds of each rule on `rows`."""
    figures = {}
    exact, seconds = timed(hygiene.duplicate_prompts, rows)
    figures["duplicate_prompt"] = (len(exact), seconds)
    broken, seconds = timed(hygiene.empty_or_broken, rows)
    figures["empty_or_broken"] = (len(broken), seconds)
    texts = [embedding_text(row.prompt) for row in rows]
    embeddings, embed_seconds = timed(embed_texts, texts, model=settings.embedding_model)
    skip = {f.row for f in exact} | {f.row for f in broken if f.candidate is None}
    near = {}
    for threshold in sorted({settings.near_duplicate_threshold, *thresholds}):
        found, search_seconds = timed(hygiene.near_duplicate_prompts, rows, embeddings, threshold, skip=skip)
        near[threshold] = len(found)
        if threshold == settings.near_duplicate_threshold:
            figures["near_duplicate_prompt"] = (len(found), embed_seconds + search_seconds)
            figures["  embeddings (MiniLM)"] = (None, embed_seconds)
            figures["  similarity search"] = (None, search_seconds)
            examples = [f.detail for f in found[:3]]
    for rule, function in (
        ("duplicate_candidate", hygiene.duplicate_candidates),
        ("identical_candidates", hygiene.identical_candidates),
    ):
        found, seconds = timed(function, rows)
        figures[rule] = (len(found), seconds)
    found, seconds = timed(hygiene.length_outliers, rows, settings.length_outlier_z)
    figures["length_outlier"] = (len(found), seconds)
    found, seconds = timed(
        hygiene.wrong_language,
        rows,
        settings.language,
        detect_language,
        min_letters=settings.language_min_letters,
        confidence=settings.language_confidence,
    )
    figures["wrong_language"] = (len(found), seconds)
    languages = sorted({f.detail.split("'")[1] for f in found})
    return {"figures": figures, "near_by_threshold": near, "near_examples": examples, "other_languages": languages}


def print_table(name: str, rows: int, candidates: int, measured: dict) -> None:
    """The rules' counts and time per 10k rows for one source."""
    print(f"\n{name}: {rows} rows, {candidates} candidates")
    print(f"{'rule':<24} {'found':>7} {'seconds':>9} {'s / 10k rows':>13}")
    for rule, (found, seconds) in measured["figures"].items():
        shown = "" if found is None else str(found)
        print(f"{rule:<24} {shown:>7} {seconds:9.3f} {seconds * 10_000 / rows:13.2f}")
    near = ", ".join(f"{t:g}: {n}" for t, n in measured["near_by_threshold"].items())
    print(f"near duplicates by threshold: {near}")
    for example in measured["near_examples"]:
        print(f"  e.g. {example}")
    if measured["other_languages"]:
        print(f"other languages found: {', '.join(measured['other_languages'])}")


def main(argv=None) -> dict:
    """Measure every source, print its table, then one JSON line; returns the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, type=Path, help="data files or folders to read")
    parser.add_argument("--language", default="en", help="the campaign language for the language check")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows of each source (a quick run)")
    parser.add_argument(
        "--thresholds", default="0.9,0.95,0.98", help="near-duplicate thresholds to count at (comma-separated)"
    )
    args = parser.parse_args(argv)
    settings = hygiene.HygieneSettings(language=args.language)
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    _, load_seconds = timed(sentence_encoder, settings.embedding_model)
    _, language_load_seconds = timed(known_languages)
    print(f"model loads: MiniLM {load_seconds:.2f} s, language detector {language_load_seconds:.2f} s")
    results = {}
    for given in args.data:
        path = data_file(given)
        (fmt, rows), read_seconds = timed(load_rows, path, args.limit)
        candidates = sum(len(row.candidates) for row in rows)
        measured = measure(rows, settings, thresholds)
        print_table(f"{path} ({fmt}; read in {read_seconds:.2f} s)", len(rows), candidates, measured)
        total = sum(seconds for rule, (_, seconds) in measured["figures"].items() if not rule.startswith(" "))
        scale = 10_000 / len(rows)
        results[str(given)] = {
            "format": fmt,
            "rows": len(rows),
            "candidates": candidates,
            "found": {rule: n for rule, (n, _) in measured["figures"].items() if n is not None},
            "seconds_per_10k_rows": {
                rule.strip(): round(seconds * scale, 3) for rule, (_, seconds) in measured["figures"].items()
            },
            "all_rules_seconds_per_10k_rows": round(total * scale, 2),
            "near_duplicates_by_threshold": {str(t): n for t, n in measured["near_by_threshold"].items()},
        }
    figures = {
        "settings": {k: v for k, v in vars(settings).items() if k != "examples"},
        "model_load_seconds": {"minilm": round(load_seconds, 2), "language": round(language_load_seconds, 2)},
        "sources": results,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
