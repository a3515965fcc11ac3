"""Writing a file whole: the text under its name, its folder made, and no temporary file left beside it."""

import pytest

from plumb.paths import write_whole


def test_a_file_is_written_whole_into_a_new_folder_and_replaced_whole(tmp_path):
    target = tmp_path / "new" / "rows.jsonl"
    assert write_whole(target, "first\n") == target and target.read_text() == "first\n"
    write_whole(target, "second, longer\n")
    assert target.read_text() == "second, longer\n"
    assert [p.name for p in target.parent.iterdir()] == ["rows.jsonl"]


def test_a_failed_write_leaves_the_old_file_as_it_was(tmp_path):
    target = tmp_path / "manifest.json"
    write_whole(target, "{}")
    with pytest.raises(UnicodeEncodeError):
        write_whole(target, "half \ud800")  # a lone surrogate cannot be written as UTF-8
    assert target.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
