"""Reading the data files of --backend transformers: one JSONL reader for prompts and for labelled examples."""

from __future__ import annotations

import pytest

from mlee.errors import UsageError
from mlee.runners.hf_inputs import jsonl_rows, read_texts
from mlee.runners.hf_training import read_labelled


def test_jsonl_rows_skip_blank_lines_and_name_a_broken_one(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 1}\n\n  \n{"prompt": "b"}\n', encoding="utf-8")
    assert list(jsonl_rows(path)) == [(1, {"text": "a", "label": 1}), (4, {"prompt": "b"})]
    assert read_texts(path) == ["a", "b"]
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label":\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"d.jsonl:2 is not JSON") as info:
        read_labelled(path)
    assert info.value.fix == "write one JSON object a line"
    with pytest.raises(UsageError, match=r"d.jsonl:2 is not JSON"):
        read_texts(path)


def test_labelled_examples_need_a_text_and_an_integer_label(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n', encoding="utf-8")
    assert read_labelled(path) == (["good", "bad"], [1, 0])
    path.write_text('{"text": "good", "label": "1"}\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"train.jsonl:1 needs a text string and an integer label"):
        read_labelled(path)
