"""The readers of other tools' exports moved to `collect.domain.foreign`; these names stay for existing callers."""

from collect.domain.foreign import convert_records, detect_format, to_import_rows

__all__ = ["convert_records", "detect_format", "to_import_rows"]
