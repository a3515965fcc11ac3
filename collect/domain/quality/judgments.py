"""Rater judgments as column arrays, the one input every quality statistic reads.

A judgment is one rater's verdict on one item: a comparison of two candidates shown on
the left and the right. As records (dicts, e.g. JSONL rows) a judgment has

    rater, item, left, right, choice         required; choice: left | right | tie | both_bad
    strength                                 optional, 1 = slightly better, 2 = much better, ...
    left_length, right_length, seconds       optional numbers
    gold                                     optional: on a gold item, the better candidate's id (or "tie")
    prelabel, prelabel_confidence            optional: the candidate id a reward model preferred (left or
                                             right) and how sure it was, 0..1
    prelabel_seen                            optional bool: the rater was shown that pre-label before voting
    model_label                              optional bool: the judgment is a model's auto-label, not a person's

Files written before pre-labels existed lack the last four fields: they read as unknown
(empty, NaN) and false, so such a file gives the same report as before.

Repeats need no link: a later judgment by the same rater of the same `item` is a repeat
(self-consistency compares it with their first, which is the one that counts for agreement).
Plumb's own campaigns have none: the scheduler never gives a rater a task twice, and a
changed answer supersedes the earlier one, so `plumb collect export --format judgments`
writes one live judgment per rater and task. Repeats come from files that judge items
again on purpose, e.g. other tools' exports or a study with the sides swapped.
"""

from dataclasses import dataclass

import numpy as np

from collect.domain.answers import BOTH_BAD
from plumb.data import DataError

# Signed outcome as shown on screen: -1 the left candidate won, +1 the right, 0 neither.
# "Both bad" says neither wins, which is what a tie says for agreement and preference.
CHOICES = {"left": -1, "right": 1, "tie": 0, BOTH_BAD: 0}
REQUIRED = ("rater", "item", "left", "right", "choice")
NUMBERS = ("strength", "left_length", "right_length", "seconds")
OPTIONAL = ("gold", "prelabel", "prelabel_confidence", "prelabel_seen", "model_label")
TIE = "tie"


@dataclass(frozen=True)
class JudgmentTable:
    """n judgments as parallel arrays; strings are numpy str arrays, unknown numbers are NaN."""

    rater: np.ndarray  # (n,) str
    item: np.ndarray  # (n,) str
    left: np.ndarray  # (n,) str candidate ids
    right: np.ndarray  # (n,) str
    winner: np.ndarray  # (n,) int: -1 left won, +1 right won, 0 tie / both bad
    strength: np.ndarray  # (n,) float >= 1
    left_length: np.ndarray  # (n,) float
    right_length: np.ndarray  # (n,) float
    seconds: np.ndarray  # (n,) float
    gold: np.ndarray  # (n,) str: "" when not a gold item
    prelabel: np.ndarray  # (n,) str: the candidate id the model preferred, "" when the item has no pre-label
    prelabel_confidence: np.ndarray  # (n,) float, NaN when none
    prelabel_seen: np.ndarray  # (n,) float: 1 seen before the vote, 0 not seen, NaN unknown
    model_label: np.ndarray  # (n,) bool: a model's auto-label

    def __len__(self) -> int:
        return len(self.rater)

    def subset(self, mask: np.ndarray) -> "JudgmentTable":
        """The judgments where `mask` (n,) bool is true."""
        return JudgmentTable(**{name: column[mask] for name, column in vars(self).items()})


def judgment_table(records, *, source: str = "judgments") -> JudgmentTable:
    """Check records (an iterable of dicts) and return them as a `JudgmentTable`.

    A bad record raises `DataError` naming `source`, the row and the field.
    """
    columns = {name: [] for name in (*REQUIRED, *NUMBERS, *OPTIONAL)}
    for index, record in enumerate(records):
        where = f"{source}: row {index}"
        for name in REQUIRED:
            value = record.get(name)
            if value is None or str(value) == "":
                raise DataError(f"{where}: field '{name}' is missing")
            columns[name].append(str(value))
        if columns["choice"][-1] not in CHOICES:
            raise DataError(f"{where}: field 'choice': {columns['choice'][-1]!r} is not one of {', '.join(CHOICES)}")
        if columns["left"][-1] == columns["right"][-1]:
            raise DataError(f"{where}: fields 'left' and 'right' name the same candidate {columns['left'][-1]!r}")
        for name in NUMBERS:
            columns[name].append(_number(record.get(name), where=f"{where}: field '{name}'"))
        gold = record.get("gold")
        columns["gold"].append("" if gold is None else str(gold))
        _prelabel_fields(record, columns, where)
    if not columns["rater"]:
        raise DataError(f"{source}: no judgments")
    strength = np.nan_to_num(np.array(columns["strength"], dtype=float), nan=1.0)
    if (strength < 1).any():
        raise DataError(f"{source}: row {int(np.argmax(strength < 1))}: field 'strength' must be 1 or more")
    return JudgmentTable(
        rater=np.array(columns["rater"]),
        item=np.array(columns["item"]),
        left=np.array(columns["left"]),
        right=np.array(columns["right"]),
        winner=np.array([CHOICES[c] for c in columns["choice"]], dtype=int),
        strength=strength,
        left_length=np.array(columns["left_length"], dtype=float),
        right_length=np.array(columns["right_length"], dtype=float),
        seconds=np.array(columns["seconds"], dtype=float),
        gold=np.array(columns["gold"]),
        prelabel=np.array(columns["prelabel"], dtype=str),
        prelabel_confidence=np.array(columns["prelabel_confidence"], dtype=float),
        prelabel_seen=np.array(columns["prelabel_seen"], dtype=float),
        model_label=np.array(columns["model_label"], dtype=bool),
    )


def _prelabel_fields(record: dict, columns: dict, where: str) -> None:
    """Append the record's pre-label fields to `columns`, checked: a pre-label names one of the two candidates."""
    prelabel = _missing(record.get("prelabel"))
    prelabel = "" if prelabel is None else str(prelabel)
    if prelabel and prelabel not in (columns["left"][-1], columns["right"][-1]):
        raise DataError(f"{where}: field 'prelabel': {prelabel!r} is neither 'left' nor 'right'")
    confidence = _number(_missing(record.get("prelabel_confidence")), where=f"{where}: field 'prelabel_confidence'")
    if confidence < 0 or confidence > 1:  # NaN (no pre-label) fails both comparisons, so passes
        raise DataError(f"{where}: field 'prelabel_confidence' must be between 0 and 1, got {confidence}")
    columns["prelabel"].append(prelabel)
    columns["prelabel_confidence"].append(confidence)
    seen = _flag(record.get("prelabel_seen"), where=f"{where}: field 'prelabel_seen'")
    columns["prelabel_seen"].append(np.nan if seen is None else float(seen))
    columns["model_label"].append(bool(_flag(record.get("model_label"), where=f"{where}: field 'model_label'")))


def _missing(value):
    """None for a missing value: None itself, or the NaN a table (CSV, Parquet) puts in an empty cell."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _flag(value, *, where: str) -> bool | None:
    value = _missing(value)
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise DataError(f"{where}: expected true or false, got {value!r}")


def _number(value, *, where: str) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: expected a number, got {value!r}")
    return float(value)


def winning_candidate(table: JudgmentTable) -> np.ndarray:
    """(n,) str: the id of the candidate each judgment chose, or "tie"."""
    return np.where(table.winner < 0, table.left, np.where(table.winner > 0, table.right, TIE))


def preference(table: JudgmentTable, *, with_strength: bool = False) -> np.ndarray:
    """(n,) signed preference in each item's fixed orientation (candidate ids sorted): +1 the second won.

    Judgments of one item shown with swapped sides thus get comparable labels; with
    `with_strength` the sign is scaled by the strength (an ordinal scale such as -2..2).
    """
    flip = np.where(table.left < table.right, 1, -1)
    signed = table.winner * flip
    return signed * table.strength if with_strength else signed.astype(float)


def join_keys(*columns: np.ndarray) -> np.ndarray:
    """(n,) str: the columns (each (n,) str) joined row by row into one key, for grouping with np.unique."""
    keys = columns[0]
    for column in columns[1:]:
        keys = np.char.add(np.char.add(keys, "\x1f"), column)  # a separator no id contains
    return keys


def first_judgments(table: JudgmentTable) -> np.ndarray:
    """(n,) bool: true for each rater's first judgment of an item (later ones are repeats)."""
    _, first = np.unique(join_keys(table.rater, table.item), return_index=True)
    mask = np.zeros(len(table), dtype=bool)
    mask[first] = True
    return mask


def label_matrix(table: JudgmentTable, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels (items, raters) float with NaN where a rater did not judge, items, raters) of `values` (n,).

    Only each rater's first judgment of an item is used.
    """
    first = first_judgments(table)
    items, item_index = np.unique(table.item, return_inverse=True)
    raters, rater_index = np.unique(table.rater, return_inverse=True)
    labels = np.full((len(items), len(raters)), np.nan)
    labels[item_index[first], rater_index[first]] = values[first]
    return labels, items, raters
