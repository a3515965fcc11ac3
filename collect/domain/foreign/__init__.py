"""Other tools' exports and the field's datasets as import rows that keep their judgments.

A team moving in keeps every label it paid for: each source's records become rows in
`plumb collect import`'s format (prompt_id, prompt, candidates) with `judgments`, one per
annotation, in the shape `collect.domain.foreign.labels` describes. Sources, recognised by
their columns (each module names the version of the format it follows):

| format        | module         | what it is                                                        |
|---------------|----------------|-------------------------------------------------------------------|
| label-studio  | label_studio   | Label Studio JSON export: RLHF/pairwise, Pairwise Classification, LLM Ranker |
| argilla       | argilla        | Argilla 1.x FeedbackDataset and 2.x datasets: ranking, rating, label answers |
| oasst         | oasst          | OpenAssistant message trees (ranked sibling replies)               |
| chatbot-arena | arena          | Chatbot Arena battle logs (clean_battle conv_release)              |
| ultrafeedback | rated          | UltraFeedback's rated completions                                  |
| helpsteer     | rated          | HelpSteer / HelpSteer2 rated responses                             |
| pairs         | pairs          | chosen/rejected pairs, hh-rlhf transcripts included                |
| plumb         | (this module)  | the import format itself, passed through                          |

Each reader also counts what it could not take (cancelled annotations, deleted replies, draft
answers...) and the records nobody annotated, which are imported as prompts and candidates only.
"""

from collect.domain.foreign import arena, argilla, label_studio, oasst, pairs, rated
from collect.domain.foreign.common import Conversion
from plumb.data import DataError

# Most specific first: Label Studio's `data`, then tools whose columns cannot be mistaken for plain pairs.
READERS = (
    ("label-studio", label_studio.is_label_studio, label_studio.convert),
    ("oasst", oasst.is_oasst, oasst.convert),
    ("chatbot-arena", arena.is_arena, arena.convert),
    ("ultrafeedback", rated.is_ultrafeedback, rated.convert_ultrafeedback),
    ("argilla", argilla.is_argilla, argilla.convert),
    ("helpsteer", rated.is_helpsteer, rated.convert_helpsteer),
    ("pairs", pairs.is_pairs, pairs.convert),
)
LABEL_FIELDS = ("argilla", "ultrafeedback", "helpsteer")  # sources holding several labels, one chosen by name


def detect_format(records: list[dict]) -> str:
    """The source format of the records (a name of READERS, or 'plumb' for the import format itself)."""
    if not records or not all(isinstance(record, dict) for record in records[:1]):
        return "plumb"
    return next((name for name, recognises, _ in READERS if recognises(records)), "plumb")


def convert_records(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """The records as import rows with their judgments, and what the source held; import rows pass through."""
    kind = detect_format(records)
    if label_field is not None and kind not in LABEL_FIELDS:
        raise DataError(f"{source}: a label field applies to {', '.join(LABEL_FIELDS)} sources, and this is {kind}")
    if kind == "plumb":
        out = Conversion("plumb", rows=records)
        out.annotations = sum(len(row.get("judgments") or []) for row in records if isinstance(row, dict))
        return out
    convert = next(convert for name, _, convert in READERS if name == kind)
    return convert(records, source=source, label_field=label_field)


def to_import_rows(records: list[dict], *, source: str) -> list[dict]:
    """The records as import rows of prompts and candidates only (no judgments); import rows pass through."""
    rows = convert_records(records, source=source).rows
    return [{key: value for key, value in row.items() if key != "judgments"} for row in rows]
