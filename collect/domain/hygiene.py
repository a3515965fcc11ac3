"""Data hygiene: the rules that find what should not reach raters, as pure functions over texts and embeddings.

A rule looks at `Row`s (a prompt's messages and its candidates' texts) and returns `Finding`s,
each on a prompt (`candidate` None) or on one candidate. Rows marked `reference` (what a
campaign already holds) are compared against but never found at fault. The later copy of a
duplicate is the one found, so the first stays. Embeddings (near duplicates) and the language
detector come in from the caller: this module loads no model and touches no store.

The rules, and what each acts on:

| rule | on | finds |
|---|---|---|
| `empty_or_broken` | prompt, candidate | no text; U+FFFD or control characters; a prompt not ending with the user |
| `duplicate_prompt` | prompt | the same prompt as an earlier row, after normalising whitespace and case |
| `near_duplicate_prompt` | prompt | cosine similarity of the prompts' embeddings at least `near_duplicate_threshold` |
| `duplicate_candidate` | candidate | the same answer to the same prompt in an earlier row |
| `identical_candidates` | candidate | two candidates of one row alike: a pair nobody can judge |
| `length_outlier` | prompt, candidate | robust z-score of log length (median, MAD) beyond `length_outlier_z` |
| `wrong_language` | prompt, candidate | a language other than the campaign's, when the detector is sure |
"""

import dataclasses
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from plumb.config import ConfigError

RULES = (
    "empty_or_broken",
    "duplicate_prompt",
    "near_duplicate_prompt",
    "duplicate_candidate",
    "identical_candidates",
    "length_outlier",
    "wrong_language",
)
# `off` skips the check (the embeddings or the language model are not even loaded); `keep` reports only.
ACTIONS = ("off", "keep", "flag", "drop")
STRENGTH = {"keep": 0, "flag": 1, "drop": 2}
# Iglewicz and Hoaglin's constants: 0.6745 makes the MAD of a normal sample estimate its standard deviation,
# 1.253314 does the same for the mean absolute deviation when more than half the values are equal (MAD 0).
MAD_SCALE = 0.6745
MEAN_AD_SCALE = 1.253314

# Unicode's control characters (category Cc) but tab, newline and carriage return: a sign of a damaged text.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
LANGUAGE_SAMPLE = 2000  # characters of a text the detector reads: a long text's language shows in its start
NOT_LANGUAGES = ("und", "zxx")  # ISO 639-2's "undetermined" and "no linguistic content" (code, numbers)
# detect(text) -> (ISO 639-1 code, probability)
Detector = Callable[[str], tuple[str, float]]


@dataclass
class HygieneSettings:
    """What to do with each rule's findings (off, keep, flag, drop) and the rules' thresholds."""

    empty_or_broken: str = field(default="drop", metadata={"help": "Empty or broken prompts and candidates."})
    duplicate_prompt: str = field(default="flag", metadata={"help": "A prompt repeated after normalising."})
    near_duplicate_prompt: str = field(default="flag", metadata={"help": "A prompt whose embedding is close."})
    duplicate_candidate: str = field(default="drop", metadata={"help": "The same answer to the same prompt again."})
    identical_candidates: str = field(default="drop", metadata={"help": "Candidates of one task alike."})
    length_outlier: str = field(default="flag", metadata={"help": "A prompt or answer of unusual length."})
    wrong_language: str = field(default="flag", metadata={"help": "Text not in the campaign's language."})
    near_duplicate_threshold: float = field(
        default=0.95, metadata={"help": "Cosine similarity of MiniLM embeddings at which prompts are near duplicates."}
    )
    length_outlier_z: float = field(
        default=3.5, metadata={"help": "Robust z-score (median, MAD) of log length beyond which a text is an outlier."}
    )
    language_min_letters: int = field(
        default=20, metadata={"help": "Texts with fewer letters are too short for the language check."}
    )
    language_confidence: float = field(
        default=0.9, metadata={"help": "The detector's probability needed to call a text another language."}
    )
    embedding_model: str = field(
        default="default", metadata={"help": "Sentence encoder for near duplicates (default: all-MiniLM-L6-v2)."}
    )
    examples: int = field(default=3, metadata={"help": "Examples per rule in the report."})
    language: str | None = None  # the campaign's own `language` key; set by the caller, not in the `hygiene` block

    def action(self, rule: str) -> str:
        """The action chosen for `rule`; the language check is off when no language is named."""
        if rule == "wrong_language" and not self.language:
            return "off"
        return getattr(self, rule)


SETTING_KEYS = tuple(f.name for f in dataclasses.fields(HygieneSettings) if f.name != "language")


def settings_from_dict(values: dict | None, *, where: str, language: str | None = None) -> HygieneSettings:
    """`HygieneSettings` from a campaign's `hygiene` mapping; a wrong key or value is a `ConfigError` naming both."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: key 'hygiene': expected a mapping of rules and thresholds, got {values!r}")
    for key in values:
        if key == "language":
            raise ConfigError(f"{where}: key 'hygiene.language': name the language at the top level (`language: en`)")
        if key not in SETTING_KEYS:
            close = difflib.get_close_matches(str(key), SETTING_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: key 'hygiene.{key}': unknown{hint}; known: {', '.join(SETTING_KEYS)}")
    # YAML 1.1 reads an unquoted `off` as false.
    values = {key: "off" if value is False and key in RULES else value for key, value in values.items()}
    settings = HygieneSettings(**values, language=language)
    problem = settings_problem(settings)
    if problem:
        raise ConfigError(f"{where}: key 'hygiene.{problem[0]}': {problem[1]}")
    return settings


def settings_problem(settings: HygieneSettings) -> tuple[str, str] | None:
    """(key, "expected ..., got ...") of the first ill-typed or out-of-range key of `settings`; None when all fit."""
    number = (int, float)
    checks = [(rule, getattr(settings, rule) in ACTIONS, f"one of {', '.join(ACTIONS)}") for rule in RULES]
    checks += [
        (
            "near_duplicate_threshold",
            _is(settings.near_duplicate_threshold, number) and 0 < settings.near_duplicate_threshold <= 1,
            "a cosine similarity in (0, 1]",
        ),
        ("length_outlier_z", _is(settings.length_outlier_z, number) and settings.length_outlier_z > 0, "above 0"),
        (
            "language_min_letters",
            _is(settings.language_min_letters, int) and settings.language_min_letters >= 0,
            "an integer, 0 or more",
        ),
        (
            "language_confidence",
            _is(settings.language_confidence, number) and 0 <= settings.language_confidence <= 1,
            "a probability in [0, 1]",
        ),
        ("embedding_model", isinstance(settings.embedding_model, str) and settings.embedding_model, "a model name"),
        ("examples", _is(settings.examples, int) and settings.examples >= 0, "an integer, 0 or more"),
    ]
    return next(
        ((key, f"expected {expected}, got {getattr(settings, key)!r}") for key, ok, expected in checks if not ok), None
    )


def _is(value, types) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


@dataclass(frozen=True)
class Row:
    """A prompt (message list) and its candidates' texts, as the rules see them; `label` names it in the report."""

    prompt: list
    candidates: list[str]
    label: str = ""
    reference: bool = False  # already in the campaign: compared against, never found at fault


@dataclass(frozen=True)
class Finding:
    """One rule's finding on a row's prompt (`candidate` None) or on one of its candidates."""

    rule: str
    row: int
    candidate: int | None
    detail: str


def normalise(text: str) -> str:
    """The text with runs of whitespace made one space, trimmed, case folded: the key of exact duplicates."""
    return " ".join(text.split()).casefold()


def prompt_text(messages: list) -> str:
    """The prompt's turns as one text, each line led by its role (the whole conversation counts)."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def user_text(messages: list) -> str:
    """What the user wrote in the prompt, turn after turn (the part whose language and length matter)."""
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


def empty_or_broken(rows: list[Row]) -> list[Finding]:
    """Prompts and candidates with no text or damaged text, and prompts that do not end with the user's turn."""
    found = []
    for r, row in _own(rows):
        problem = _text_problem(" ".join(m["content"] for m in row.prompt))
        if problem is None and row.prompt[-1]["role"] != "user":
            problem = f"its last turn is the {row.prompt[-1]['role']}'s, not the user's"
        if problem:
            found.append(Finding("empty_or_broken", r, None, f"prompt: {problem}"))
        for c, text in enumerate(row.candidates):
            if problem := _text_problem(text):
                found.append(Finding("empty_or_broken", r, c, f"candidate {c}: {problem}"))
    return found


def _text_problem(text: str) -> str | None:
    if not text.strip():
        return "empty"
    if "\ufffd" in text:  # what a decoder leaves for bytes it could not read
        return "U+FFFD replacement character (damaged encoding)"
    bad = CONTROL.search(text)
    return f"control character U+{ord(bad.group()):04X}" if bad else None


def duplicate_prompts(rows: list[Row]) -> list[Finding]:
    """Prompts equal to an earlier row's after normalising whitespace and case (the first one stays)."""
    first, found = {}, []
    for r, row in enumerate(rows):
        key = normalise(prompt_text(row.prompt))
        if not _has_text(row.prompt):
            continue
        if key in first and not row.reference:
            found.append(Finding("duplicate_prompt", r, None, f"same prompt as {rows[first[key]].label}"))
        first.setdefault(key, r)
    return found


def duplicate_candidates(rows: list[Row]) -> list[Finding]:
    """Candidates that give the same answer to the same prompt as a candidate of an earlier row."""
    first, found = {}, []
    for r, row in enumerate(rows):
        prompt = normalise(prompt_text(row.prompt))
        for c, text in enumerate(row.candidates):
            key = (prompt, normalise(text))
            if not key[1]:
                continue
            seen = first.get(key)
            if seen is not None and seen[0] != r and not row.reference:
                found.append(Finding("duplicate_candidate", r, c, f"same answer as {rows[seen[0]].label}, {seen[1]}"))
            first.setdefault(key, (r, f"candidate {c}"))
    return found


def identical_candidates(rows: list[Row]) -> list[Finding]:
    """The later of two candidates of one row that are alike after normalising: their task cannot be judged."""
    found = []
    for r, row in _own(rows):
        first = {}
        for c, text in enumerate(row.candidates):
            key = normalise(text)
            if key and key in first:
                found.append(
                    Finding("identical_candidates", r, c, f"candidate {c} is the same as candidate {first[key]}")
                )
            first.setdefault(key, c)
    return found


def near_duplicate_prompts(
    rows: list[Row], embeddings: np.ndarray, threshold: float, *, skip: set[int] = frozenset(), block: int = 1024
) -> list[Finding]:
    """Prompts whose embedding's cosine similarity with an earlier prompt's is at least `threshold`.

    `embeddings` has one row per `Row`; rows in `skip` (exact duplicates, found already) are not reported.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    if len(vectors) != len(rows):
        raise ValueError(f"{len(vectors)} embeddings for {len(rows)} rows")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms > 0, norms, 1)
    usable = np.array([_has_text(row.prompt) for row in rows], dtype=bool)
    found = []
    # Blocks of rows against every earlier row: memory stays block x n, not n x n.
    for start in range(0, len(rows), block):
        end = min(start + block, len(rows))
        similarity = vectors[start:end] @ vectors[:end].T
        earlier = np.arange(end)[None, :] < np.arange(start, end)[:, None]
        similarity = np.where(earlier & usable[None, :end], similarity, -np.inf)
        best = similarity.argmax(axis=1)
        for offset, j in enumerate(best):
            r = start + offset
            score = float(similarity[offset, j])
            if score >= threshold and usable[r] and not rows[r].reference and r not in skip:
                found.append(Finding("near_duplicate_prompt", r, None, f"cosine {score:.3f} with {rows[j].label}"))
    return found


def robust_z(values) -> np.ndarray:
    """Modified z-scores: 0.6745 (x - median) / MAD; with MAD 0, (x - median) / (1.253314 mean |x - median|)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values
    deviations = values - np.median(values)
    mad = np.median(np.abs(deviations))
    if mad > 0:
        return MAD_SCALE * deviations / mad
    mean_ad = np.mean(np.abs(deviations))
    return deviations / (MEAN_AD_SCALE * mean_ad) if mean_ad > 0 else np.zeros_like(values)


def length_outliers(rows: list[Row], z: float) -> list[Finding]:
    """Prompts and candidates whose log length in characters is a robust-z outlier among their own kind.

    Lengths are skewed (a reply ten times the median is as far out as one a tenth of it), hence the log.
    Prompts are measured by what the user wrote; candidates by their text. Empty texts are left out.
    """
    found = []
    prompts = [(r, None, normalise(user_text(row.prompt))) for r, row in enumerate(rows)]
    answers = [(r, c, normalise(text)) for r, row in enumerate(rows) for c, text in enumerate(row.candidates)]
    for kind, texts in (("prompt", prompts), ("candidate", answers)):
        texts = [(r, c, text) for r, c, text in texts if text]
        if len(texts) < 3:
            continue
        lengths = np.array([len(text) for *_, text in texts])
        scores = robust_z(np.log(lengths))
        median = int(np.median(lengths))
        for (r, c, _), length, score in zip(texts, lengths, scores):
            if abs(score) > z and not rows[r].reference:
                what = kind if c is None else f"candidate {c}"
                detail = f"{what}: {length} characters, robust z {score:+.1f} (median {median})"
                found.append(Finding("length_outlier", r, c, detail))
    return found


def wrong_language(rows: list[Row], language: str, detect: Detector, *, min_letters: int, confidence: float):
    """Prompts (what the user wrote) and candidates the detector puts, at least `confidence` sure, in another
    language than `language`; texts with fewer than `min_letters` letters are not judged."""
    found = []
    for r, row in _own(rows):
        texts = [(None, user_text(row.prompt)), *enumerate(row.candidates)]
        for c, text in texts:
            if not _letters_at_least(text, max(min_letters, 1)):
                continue
            code, probability = detect(text[:LANGUAGE_SAMPLE])
            if code != language and code not in NOT_LANGUAGES and probability >= confidence:
                what = "prompt" if c is None else f"candidate {c}"
                detail = f"{what}: detected '{code}' (p {probability:.2f}), not '{language}'"
                found.append(Finding("wrong_language", r, c, detail))
    return found


def find_all(
    rows: list[Row],
    settings: HygieneSettings,
    *,
    embeddings: np.ndarray | None = None,
    detect: Detector | None = None,
) -> list[Finding]:
    """Every finding of every rule that is not `off`, in rule order; embeddings and `detect` are needed only by
    the near-duplicate and the language rules."""
    on = {rule for rule in RULES if settings.action(rule) != "off"}
    broken = empty_or_broken(rows)
    # An empty or broken text is reported once, by its own rule, not again as a duplicate or an outlier.
    damaged = {(f.row, f.candidate) for f in broken}
    found = broken if "empty_or_broken" in on else []
    exact = duplicate_prompts(rows)
    if "duplicate_prompt" in on:
        found += exact
    if "near_duplicate_prompt" in on:
        if embeddings is None:
            raise ValueError("the near_duplicate_prompt rule needs the prompts' embeddings")
        skip = {f.row for f in exact} | {r for r, c in damaged if c is None}
        found += near_duplicate_prompts(rows, embeddings, settings.near_duplicate_threshold, skip=skip)
    if "duplicate_candidate" in on:
        found += duplicate_candidates(rows)
    if "identical_candidates" in on:
        found += identical_candidates(rows)
    if "length_outlier" in on:
        found += [f for f in length_outliers(rows, settings.length_outlier_z) if (f.row, f.candidate) not in damaged]
    if "wrong_language" in on:
        if detect is None:
            raise ValueError("the wrong_language rule needs a language detector")
        found += wrong_language(
            rows,
            settings.language,
            detect,
            min_letters=settings.language_min_letters,
            confidence=settings.language_confidence,
        )
    return found


def _letters_at_least(text: str, count: int) -> bool:
    for ch in text:
        if ch.isalpha():
            count -= 1
            if count <= 0:
                return True
    return False


def _own(rows: list[Row]):
    return ((r, row) for r, row in enumerate(rows) if not row.reference)


def _has_text(messages: list) -> bool:
    return any(m["content"].strip() for m in messages)
