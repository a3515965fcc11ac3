"""The data contract between stages: Hugging Face datasets in TRL's formats.

| kind     | columns                                                                 |
|----------|-------------------------------------------------------------------------|
| prompts  | prompt (messages), prompt_id                                            |
| sft      | messages                                                                |
| pairwise | prompt, chosen, rejected (message lists), optional margin, meta         |
| ranking  | prompt, completions (list of message lists), ranks (ties allowed)       |
| unpaired | prompt, completion, label (bool)                                        |

Each column may also be TRL's "standard" form (plain strings instead of message lists),
as long as a row is one form throughout. Errors name the source, the row and the field.
"""

import gzip
import json
import logging
import os
from importlib import resources
from itertools import combinations
from pathlib import Path

from plumb.implicit_prompt import explicit_pair, has_implicit_prompt

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant", "tool")
KINDS = {
    "prompts": ("prompt",),
    "sft": ("messages",),
    "pairwise": ("prompt", "chosen", "rejected"),
    "ranking": ("prompt", "completions", "ranks"),
    "unpaired": ("prompt", "completion", "label"),
}
BUILTIN = "builtin:"
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
COMPRESSED = ".gz"  # gzip, as hh-rlhf and many Hub datasets ship their JSON Lines


class DataError(ValueError):
    """A dataset breaks the contract; the message names the source, the row and the field."""


# Loading


def builtin_path(name: str, split: str) -> Path:
    """The file of a dataset shipped with Plumb, e.g. `builtin:instruct` split `train`."""
    path = Path(str(resources.files("plumb") / "assets" / name / f"{split}.jsonl"))
    if not path.is_file():
        raise DataError(f"{BUILTIN}{name}: no split '{split}' shipped with Plumb ({path} is missing)")
    return path


def load_records(source: str, split: str = "train"):
    """Load a split from `builtin:NAME`, a JSONL/JSON/Parquet/CSV file, a saved dataset directory, or a Hub id."""
    import datasets

    path = _jsonl_path(source, split)
    if path is not None:
        return read_jsonl(path)
    path = Path(source).expanduser()
    if path.is_file():
        # datasets reads gzip itself for JSON and CSV; Parquet compresses inside the file.
        return datasets.load_dataset(FILE_FORMATS[file_type(path)], data_files=str(path), split="train")
    if path.is_dir():
        return _load_directory(path, split)
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise DataError(f"{source}: no such file or directory")
    try:
        return datasets.load_dataset(source, split=split)
    except Exception as error:  # the Hub client raises many types; all mean "not loadable"
        raise DataError(
            f"could not load dataset '{source}' split '{split}' as a local path or from the Hugging Face Hub "
            f"({type(error).__name__}). Without network access, save it to a file (JSONL/Parquet) and name the file."
        ) from error


def file_type(path: Path) -> str:
    """The data file type of a path (`.jsonl`, `.csv`...; `x.jsonl.gz` is `.jsonl`), or a `DataError` naming it."""
    suffixes = path.suffixes[-2:] if path.suffix == COMPRESSED else path.suffixes[-1:]
    kind = suffixes[0] if suffixes else ""
    if kind not in FILE_FORMATS or (path.suffix == COMPRESSED and kind == ".parquet"):
        accepted = ", ".join(list(FILE_FORMATS) + [".jsonl.gz", ".json.gz", ".csv.gz"])
        raise DataError(f"{path}: unknown file type '{''.join(suffixes) or path.name}' (use {accepted})")
    return kind


def _load_directory(path: Path, split: str):
    import datasets

    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataError(f"{path}: no split '{split}' (has {', '.join(loaded)})")
            return loaded[split]
        # One saved Dataset is one split: answering every split name with it would make the
        # training rows their own held-out set.
        if split != "train":
            raise DataError(f"{path}: no split '{split}' (a single saved dataset is its 'train' split)")
        return loaded
    for suffix in [*FILE_FORMATS, ".jsonl.gz", ".json.gz", ".csv.gz"]:
        if (path / f"{split}{suffix}").is_file():
            return load_records(str(path / f"{split}{suffix}"))
    shards = sorted(path.glob(f"{split}-*.parquet"))  # Plumb's exports and the Hub's `SPLIT-00000-of-00001.parquet`
    if shards:
        return datasets.load_dataset("parquet", data_files=[str(shard) for shard in shards], split="train")
    raise DataError(f"{path}: no saved dataset and no {split}.jsonl/.parquet/.csv (or {split}-*.parquet) file inside")


def read_jsonl_rows(path: str | os.PathLike) -> list[dict]:
    """Read JSON Lines into dicts; a bad line is an error naming the file and line."""
    return read_numbered_jsonl(path)[0]


def read_numbered_jsonl(path: str | os.PathLike) -> tuple[list[dict], list[int]]:
    """The rows of a JSON Lines file and the line (1-based, as editors count, blank lines included) of each."""
    rows, lines = [], []
    opener = gzip.open if str(path).endswith(COMPRESSED) else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
            field = _lone_surrogate_at(row)
            if field is not None:
                # JSON's \ud800 escapes parse to text no UTF-8 file, database or Arrow table can hold.
                raise DataError(f"{path}: line {number}: field '{field}' contains a lone UTF-16 surrogate")
            rows.append(row)
            lines.append(number)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows, lines


def _lone_surrogate_at(value, where: str = "") -> str | None:
    """The path (`messages[0].content`) of the first text in `value` holding a lone surrogate, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "(the value)"
        return None
    if isinstance(value, dict):
        items = ((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    return next((found for path, item in items if (found := _lone_surrogate_at(item, path)) is not None), None)


def read_jsonl(path: str | os.PathLike):
    """Read a JSON Lines file into a Dataset."""
    return rows_to_dataset(read_jsonl_rows(path), source=str(path))


def rows_to_dataset(rows: list[dict], *, source: str = "rows"):
    """Build a Dataset from dicts; Arrow's refusal of mixed column types becomes a `DataError` naming the column."""
    import datasets
    import pyarrow

    # from_list takes its columns from the first row alone: give every row every column.
    columns = list(dict.fromkeys(key for row in rows for key in row))
    rows = [{column: row.get(column) for column in columns} for row in rows]
    try:
        return datasets.Dataset.from_list(rows)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, TypeError) as error:
        raise DataError(f"{source}: {_mixed_column(rows) or 'rows do not fit one table'} ({error})") from None


def _mixed_column(rows: list[dict]) -> str | None:
    for column in {key for row in rows for key in row}:
        kinds = {type(row[column]).__name__ for row in rows if row.get(column) is not None}
        kinds = {"number" if k in ("int", "float") else k for k in kinds}
        if len(kinds) > 1:
            return f"column '{column}' mixes {', '.join(sorted(kinds))} across rows"
    return None


def _jsonl_path(source: str, split: str) -> Path | None:
    if source.startswith(BUILTIN):
        return builtin_path(source[len(BUILTIN) :], split)
    path = Path(source).expanduser()
    return path if path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")) else None


def load_contract(source: str, kind: str | tuple[str, ...], split: str = "train"):
    """Load a split and check it against the contract for `kind` (or the first of several kinds its columns fit)."""
    where = f"{source} [{split}]"
    path = _jsonl_path(source, split)
    wants_pairs = "pairwise" in ((kind,) if isinstance(kind, str) else kind)
    if path is not None:
        # Check the rows before Arrow sees them: Arrow's own errors on mixed types name no row.
        rows, lines = read_numbered_jsonl(path)
        if wants_pairs and has_implicit_prompt({key for row in rows for key in row}):
            rows, lines = explicit_pairs(rows, lines, where=where)
        validate(rows, _pick_kind(kind, {key for row in rows for key in row}, where), source=where, lines=lines)
        return rows_to_dataset(rows, source=where)
    dataset = load_records(source, split)
    if wants_pairs and has_implicit_prompt(dataset.column_names):
        dataset = rows_to_dataset(explicit_pairs([dict(row) for row in dataset], None, where=where)[0], source=where)
    validate(dataset, _pick_kind(kind, set(dataset.column_names), where), source=where)
    return dataset


def explicit_pairs(rows: list[dict], lines: list[int] | None, *, where: str) -> tuple[list[dict], list[int] | None]:
    """Implicit-prompt pairs made explicit, leaving out (counted, with a warning) those whose reply is empty.

    A transcript that ends on an empty assistant turn (a few hh-rlhf ones do) has no answer to
    compare; TRL would train on the bare template, Plumb says how many it left out instead.
    """
    pairs = [explicit_pair(row) for row in rows]
    kept = [
        i for i, pair in enumerate(pairs) if not any(empty_response_problem(pair[s]) for s in ("chosen", "rejected"))
    ]
    if len(kept) < len(pairs):
        logger.warning("%s: left out %d of %d pairs whose reply is empty", where, len(pairs) - len(kept), len(pairs))
    if not kept:
        raise DataError(f"{where}: every pair has an empty reply")
    return [pairs[i] for i in kept], [lines[i] for i in kept] if lines is not None else None


def _pick_kind(kind: str | tuple[str, ...], columns: set[str], where: str) -> str:
    if isinstance(kind, str):
        return kind
    for candidate in kind:
        if set(KINDS[candidate]) <= columns:
            return candidate
    wanted = "; ".join(f"{k}: {', '.join(KINDS[k])}" for k in kind)
    raise DataError(f"{where}: columns {sorted(columns)} fit none of the accepted kinds ({wanted})")


# Validation


def detect_kind(dataset) -> str:
    """The contract kind whose required columns the dataset has (most specific first)."""
    for kind in ("pairwise", "ranking", "unpaired", "sft", "prompts"):
        if all(column in dataset.column_names for column in KINDS[kind]):
            return kind
    raise DataError(f"columns {dataset.column_names} match no kind of the data contract ({_kinds_help()})")


def _kinds_help() -> str:
    return "; ".join(f"{kind}: {', '.join(columns)}" for kind, columns in KINDS.items())


def validate(rows, kind: str, *, source: str = "dataset", lines: list[int] | None = None) -> None:
    """Raise `DataError` naming the row (0-based) and field of the first row (Dataset or dicts) that breaks `kind`;
    with the rows' `lines` in their JSONL file, it names the line instead, as the file's own errors do."""
    if kind not in KINDS:
        raise DataError(f"unknown data kind '{kind}' (choose one of: {', '.join(KINDS)})")
    columns = rows.column_names if hasattr(rows, "column_names") else list(rows[0]) if rows else []
    missing = [c for c in KINDS[kind] if c not in columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)} for {kind} data (has {columns})")
    check = ROW_CHECKS[kind]
    for index, row in enumerate(rows):
        absent = [c for c in KINDS[kind] if c not in row]
        where = f"line {lines[index]}" if lines else f"row {index}"
        if absent:
            raise DataError(f"{source}: {where}: field '{absent[0]}' is missing")
        problem = check(row)
        if problem:
            field, message = problem
            raise DataError(f"{source}: {where}: field '{field}': {message}")


def message_problem(messages, *, allow_text: bool = True) -> str | None:
    """Why `messages` is not a message list (or, if allowed, a plain string); None when it is fine."""
    if isinstance(messages, str):
        return None if allow_text else "expected a list of messages, got a string"
    if not isinstance(messages, list) or not messages:
        return f"expected a non-empty list of messages {{role, content}}, got {_describe(messages)}"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            return f"message {i} must have 'role' and 'content', got {_describe(message)}"
        if message["role"] not in ROLES:
            return f"message {i} has unknown role {message['role']!r} (use one of {', '.join(ROLES)})"
        if not isinstance(message["content"], str):
            return f"message {i} content must be text, got {_describe(message['content'])}"
    return None


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _first(checks):
    for field, problem in checks:
        if problem:
            return field, problem
    return None


def _same_form(row, fields):
    forms = {isinstance(row[f], str) for f in fields}
    return None if len(forms) == 1 else (fields[-1], "mixes plain text and message lists in one row")


def _check_prompts(row):
    return _first([("prompt", message_problem(row["prompt"]))])


def _check_sft(row):
    problem = message_problem(row["messages"], allow_text=False)
    if problem is None and row["messages"][-1]["role"] != "assistant":
        problem = "the last message must be the assistant's"
    return _first([("messages", problem)])


def empty_response_problem(response) -> str | None:
    """Why a response (text or messages) is empty; None when it has text."""
    text = response if isinstance(response, str) else "".join(m.get("content") or "" for m in response)
    return None if text.strip() else "the response is empty"


def _check_pairwise(row):
    found = _first([(f, message_problem(row[f])) for f in ("prompt", "chosen", "rejected")])
    found = found or _first([(f, empty_response_problem(row[f])) for f in ("chosen", "rejected")])
    if found:
        return found
    if row.get("margin") is not None and not isinstance(row["margin"], (int, float)):
        return "margin", f"expected a number, got {_describe(row['margin'])}"
    return _same_form(row, ("prompt", "chosen", "rejected"))


def _check_ranking(row):
    if (problem := message_problem(row["prompt"])) is not None:
        return "prompt", problem
    completions, ranks = row["completions"], row["ranks"]
    if not isinstance(completions, list) or len(completions) < 2:
        return "completions", f"expected a list of at least 2 completions, got {_describe(completions)}"
    for i, completion in enumerate(completions):
        if (problem := message_problem(completion) or empty_response_problem(completion)) is not None:
            return "completions", f"completion {i}: {problem}"
    if not isinstance(ranks, list) or len(ranks) != len(completions):
        return "ranks", f"expected {len(completions)} ranks (one per completion), got {_describe(ranks)}"
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in ranks):
        return "ranks", f"ranks must be integers (1 = best, ties share a rank), got {ranks}"
    return None


def _check_unpaired(row):
    found = _first([(f, message_problem(row[f])) for f in ("prompt", "completion")])
    found = found or _first([("completion", empty_response_problem(row["completion"]))])
    if found:
        return found
    if not isinstance(row["label"], bool):
        return "label", f"expected true or false, got {_describe(row['label'])}"
    return _same_form(row, ("prompt", "completion"))


ROW_CHECKS = {
    "prompts": _check_prompts,
    "sft": _check_sft,
    "pairwise": _check_pairwise,
    "ranking": _check_ranking,
    "unpaired": _check_unpaired,
}


# Conversion


def ranking_pairs(ranks: list[int]) -> list[tuple[int, int]]:
    """(better, worse) index pairs of a ranking (lower rank is better); ties give no pair."""
    pairs = []
    for i, j in combinations(range(len(ranks)), 2):
        if ranks[i] < ranks[j]:
            pairs.append((i, j))
        elif ranks[j] < ranks[i]:
            pairs.append((j, i))
    return pairs


def ranking_to_pairs(dataset):
    """Expand each ranking of K completions into its pairwise preferences (ties produce no pair)."""
    import datasets

    rows = []
    for index, row in enumerate(dataset):
        meta = dict(row.get("meta") or {})
        for better, worse in ranking_pairs(row["ranks"]):
            rows.append(
                {
                    "prompt": row["prompt"],
                    "chosen": row["completions"][better],
                    "rejected": row["completions"][worse],
                    "meta": {**meta, "ranking_row": index, "ranks": [row["ranks"][better], row["ranks"][worse]]},
                }
            )
    return datasets.Dataset.from_list(rows)


def to_conversational(dataset):
    """Turn standard (plain-text) prompt/chosen/rejected/completion columns into message lists."""

    def convert(row):
        out = {}
        if isinstance(row.get("prompt"), str):
            out["prompt"] = [{"role": "user", "content": row["prompt"]}]
        for column in ("chosen", "rejected", "completion"):
            if isinstance(row.get(column), str):
                out[column] = [{"role": "assistant", "content": row[column]}]
        return out

    return dataset.map(convert)


def to_standard(dataset):
    """Turn message-list columns into plain text (message contents joined by blank lines)."""

    def text(messages):
        return messages if isinstance(messages, str) else "\n\n".join(m["content"] for m in messages)

    def convert(row):
        out = {}
        if "prompt" in row and not isinstance(row["prompt"], str):
            out["prompt"] = text(row["prompt"])
        for column in ("chosen", "rejected", "completion"):
            if column in row:
                out[column] = text(row[column])
        return out

    return dataset.map(convert)


def messages_to_prompt_completion(dataset):
    """One row per assistant turn: the conversation so far as `prompt`, that turn as `completion`.

    TRL masks the prompt out of the loss, so every assistant turn is trained and nothing else.
    """
    import datasets

    rows = []
    for row in dataset:
        for i, message in enumerate(row["messages"]):
            if message["role"] == "assistant" and i > 0:
                rows.append({"prompt": row["messages"][:i], "completion": [message]})
    return datasets.Dataset.from_list(rows)


def load_train_test(
    source: str,
    kind: str | tuple[str, ...],
    *,
    train_split: str = "train",
    test_split: str | None = "test",
    test_size: float = 0.1,
    seed: int = 0,
):
    """(train, test) for `kind`: the source's own test split when it has one, else `test_size` held out of train."""
    train = load_contract(source, kind, train_split)
    has_splits = not Path(source).expanduser().is_file()
    if test_split and has_splits:
        try:
            return train, load_contract(source, kind, test_split)
        except DataError as error:
            if "no split" not in str(error) and "no saved dataset" not in str(error):
                raise
    if not test_size:
        return train, None
    return split_by_prompt(train, test_size=test_size, seed=seed)


def prompt_key(row: dict) -> str:
    """What identifies a row's prompt: its `prompt`, or a conversation's turns before the last one."""
    prompt = row["prompt"] if "prompt" in row else row["messages"][:-1]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    return json.dumps([[m["role"], " ".join(m["content"].split()).lower()] for m in prompt])


def split_by_prompt(dataset, *, test_size: float, seed: int = 0):
    """(train, test) with about `test_size` of the rows held out, whole prompts at a time.

    Rows that share a prompt (a ranking's pairs, several raters' answers) stay on one side,
    so the held-out figures are about prompts the model never trained on.
    """
    train_rows, test_rows = split_indices_by_prompt(
        [prompt_key(row) for row in dataset], test_size=test_size, seed=seed
    )
    return dataset.select(train_rows), dataset.select(test_rows)


def split_indices_by_prompt(keys: list[str], *, test_size: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, test) row indices for rows with these prompt keys, as `split_by_prompt` splits them."""
    import numpy as np

    groups = list(dict.fromkeys(keys))
    if len(groups) < 2:
        raise DataError(
            f"cannot hold out part of {len(keys)} rows that all share one prompt: give a test split or more prompts"
        )
    order = np.random.default_rng(seed).permutation(len(groups))
    size = {group: 0 for group in groups}
    for key in keys:
        size[key] += 1
    wanted = test_size * len(keys) if test_size < 1 else test_size
    held_out, count = set(), 0
    for index in order[: len(groups) - 1]:  # at least one prompt stays for training
        if count >= wanted and held_out:
            break
        held_out.add(groups[index])
        count += size[groups[index]]
    test_rows = [i for i, key in enumerate(keys) if key in held_out]
    train_rows = [i for i, key in enumerate(keys) if key not in held_out]
    return train_rows, test_rows
