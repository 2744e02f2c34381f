"""The shared words (mlee.vocabulary): methods, their strength, the letters."""

from __future__ import annotations

from mlee.vocabulary import LETTERS, METHOD_STRENGTH, Method, weakest_method, weakest_method_name


def test_method_strength_reads_json_strings_and_enum_members_alike():
    # Rating reads methods as the strings of a database; monitors use the enum: one table serves both.
    assert [METHOD_STRENGTH.get(m, -1) for m in ("counter", "power_integration", "estimate", "guess")] == [2, 1, 0, -1]
    assert METHOD_STRENGTH[Method.counter] > METHOD_STRENGTH[Method.power_integration] > METHOD_STRENGTH[Method.estimate]


def test_the_weakest_method_is_the_one_a_sum_carries():
    assert weakest_method([Method.counter, Method.estimate, Method.power_integration]) is Method.estimate
    assert weakest_method([]) is None
    assert weakest_method_name(["counter", None, "power_integration", "made-up"]) == "power_integration"
    assert weakest_method_name([None, "made-up"]) is None


def test_letters_best_first():
    assert LETTERS == ("A", "B", "C", "D", "E")
