"""Rules of `NameIndex` (finding roster names in free text), one test per rule.

Each test builds its own small index from names written here, so a test shows
exactly which variants exist and why a mention is or is not found.
"""

from __future__ import annotations

import pytest

from pipeline.domain.matching import NameIndex, normalise

PANYU_2 = "广州市番禺区第二人民医院"
PANYU_3 = "广州市番禺区第三人民医院"


def index_of(*names: str | tuple[str, tuple[str, ...]]) -> NameIndex:
    """An index keyed by each name itself; a (name, aliases) pair adds aliases."""
    index = NameIndex()
    for entry in names:
        name, aliases = entry if isinstance(entry, tuple) else (entry, ())
        index.add(name, name, aliases)
    index.freeze()
    return index


def keys(index: NameIndex, text: str) -> list[str]:
    return [m.key for m in index.find(text)]


# ---------------------------------------------------------------- normalisation


def test_normalise_turns_full_width_into_half_width_and_lower_case() -> None:
    """GIVEN full-width digits and Latin letters WHEN normalised THEN they are ASCII, lower case."""
    assert normalise("４５８医院ＡＢＣ") == "458医院abc"


def test_normalise_drops_spaces_ideographic_spaces_brackets_and_quotes() -> None:
    """GIVEN a name spaced out with U+0020, U+3000, a zero-width space, brackets and quotes WHEN normalised
    THEN only the characters of the name remain."""
    assert normalise("广州市 番禺区\u3000第二\u200b人民医院（“番禺”）【】") == "广州市番禺区第二人民医院番禺"


# ---------------------------------------------------------------- variants


def test_full_name_is_found() -> None:
    """GIVEN a roster name WHEN a text contains it THEN it is found as a `name` mention."""
    found = index_of(PANYU_2).find(f"关于{PANYU_2}的自查报告")
    assert [(m.key, m.how) for m in found] == [(PANYU_2, "name")]


def test_alias_is_found() -> None:
    """GIVEN a name with an alias (an abbreviation) WHEN a text uses the alias THEN the name's key is found."""
    index = index_of(("中山大学附属第三医院", ("中山三院", "中大三院")))
    assert [(m.key, m.how) for m in index.find("中大三院自查报告")] == [("中山大学附属第三医院", "alias")]


def test_each_part_of_a_bracketed_name_is_a_variant() -> None:
    """GIVEN "A（B）" WHEN a text names A alone or B alone THEN the row's key is found for each."""
    name = "南方医科大学南方医院白云分院（广州市白云区人民医院）"
    index = index_of(name)
    assert keys(index, "南方医科大学南方医院白云分院报告") == [name]
    assert keys(index, "广州市白云区人民医院报告") == [name]


def test_name_without_its_city_or_province_prefix_is_a_derived_variant() -> None:
    """GIVEN 广州市番禺区第二人民医院 WHEN a text says 番禺区第二人民医院 THEN it is found as `derived`."""
    found = index_of(PANYU_2).find("番禺区第二人民医院自查报告")
    assert [(m.key, m.how) for m in found] == [(PANYU_2, "derived")]


def test_full_width_and_spaced_text_finds_the_name() -> None:
    """GIVEN a text with the name spaced by U+3000 and spaces, and an alias in full-width digits
    WHEN searched THEN both are found."""
    index = index_of(PANYU_2, ("中国人民解放军南部战区空军医院", ("458医院",)))
    assert keys(index, "广州市\u3000番禺区 第二人民医院") == [PANYU_2]
    assert keys(index, "４５８医院自查") == ["中国人民解放军南部战区空军医院"]


def test_brackets_in_text_do_not_hide_a_name() -> None:
    """GIVEN a text with the name split by half-width brackets WHEN searched THEN the name is found."""
    assert keys(index_of(PANYU_2), "广州市番禺区(第二)人民医院") == [PANYU_2]


# ---------------------------------------------------------------- names that differ by one word


def test_names_differing_by_one_ordinal_are_distinct() -> None:
    """GIVEN 番禺区第二人民医院 and 番禺区第三人民医院 WHEN a text names one (in full or without 广州市)
    THEN only that one is found, never the other."""
    index = index_of(PANYU_2, PANYU_3)
    assert keys(index, PANYU_3) == [PANYU_3]
    assert keys(index, "番禺区第三人民医院") == [PANYU_3]
    assert keys(index, "番禺区第二人民医院") == [PANYU_2]
    assert keys(index, "番禺区第五人民医院") == []


def test_longest_name_wins_at_the_same_position() -> None:
    """GIVEN 广东省妇幼保健院 and 广东省妇幼保健院互联网医院 WHEN a text names the longer THEN only it is found;
    the shorter one alone finds the shorter."""
    index = index_of("广东省妇幼保健院", "广东省妇幼保健院互联网医院")
    assert keys(index, "广东省妇幼保健院互联网医院报告") == ["广东省妇幼保健院互联网医院"]
    assert keys(index, "广东省妇幼保健院报告") == ["广东省妇幼保健院"]


def test_every_separate_mention_is_found_left_to_right() -> None:
    """GIVEN a text naming two institutions WHEN searched THEN both are found in text order with positions
    in the normalised text."""
    index = index_of(PANYU_2, PANYU_3)
    text = f"{PANYU_3}和{PANYU_2}"
    found = index.find(text)
    assert [m.key for m in found] == [PANYU_3, PANYU_2]
    assert [(m.start, m.end) for m in found] == [(0, len(PANYU_3)), (len(PANYU_3) + 1, len(text))]


# ---------------------------------------------------------------- guards on derived variants


def test_derived_variant_is_refused_after_another_place_name() -> None:
    """GIVEN 广州市第一人民医院 WHEN a text names 花都区第一人民医院 THEN 广州市第一人民医院 is not found
    (the character before the derived variant names another place)."""
    assert keys(index_of("广州市第一人民医院"), "花都区第一人民医院") == []


def test_derived_variant_is_accepted_at_the_start_after_punctuation_or_a_neutral_word() -> None:
    """GIVEN 广州市第一人民医院 WHEN its derived form stands at the start, after "，" or after "于"
    THEN it is found."""
    index = index_of("广州市第一人民医院")
    for text in ("第一人民医院自查报告", "报告，第一人民医院", "关于第一人民医院"):
        assert keys(index, text) == ["广州市第一人民医院"], text


def test_derived_variant_is_accepted_after_its_own_stripped_prefix_character() -> None:
    """GIVEN 广东省广州市天河区卫生健康局 (derived: 天河区卫生健康局, prefix 广东省广州市) WHEN a text says
    广州市天河区卫生健康局 THEN it is found: 市 before it is the stripped prefix's last character."""
    name = "广东省广州市天河区卫生健康局"
    assert [(m.key, m.how) for m in index_of(name).find("广州市天河区卫生健康局")] == [(name, "derived")]


def test_generic_remainder_is_not_a_variant() -> None:
    """GIVEN 广州市人民医院 WHEN a text says just 人民医院 THEN nothing is found (人民医院 names no one)."""
    assert keys(index_of("广州市人民医院"), "人民医院自查报告") == []


def test_derived_variant_claimed_by_two_names_is_dropped() -> None:
    """GIVEN 广州市红十字会医院 and 广东省红十字会医院 WHEN a text says 红十字会医院 THEN nothing is found
    (it would be a guess); each full name is still found."""
    index = index_of("广州市红十字会医院", "广东省红十字会医院")
    assert keys(index, "红十字会医院") == []
    assert keys(index, "广东省红十字会医院") == ["广东省红十字会医院"]


# ---------------------------------------------------------------- guards on short aliases


def test_short_alias_is_refused_when_it_starts_a_longer_word() -> None:
    """GIVEN the two-character alias 省医 WHEN a text says 省医学会 THEN it is not found."""
    assert keys(index_of(("广东省人民医院", ("省医",))), "省医学会通知") == []


def test_short_alias_is_refused_inside_a_run_of_chinese_text() -> None:
    """GIVEN the alias 省医 WHEN it follows a Chinese character that is not a neutral word THEN not found."""
    assert keys(index_of(("广东省人民医院", ("省医",))), "转本省医的报告") == []


def test_short_alias_is_accepted_as_a_word_of_its_own() -> None:
    """GIVEN the alias 省医 WHEN it stands after punctuation or a neutral word THEN it is found."""
    index = index_of(("广东省人民医院", ("省医",)))
    assert keys(index, "报告：省医自查报告") == ["广东省人民医院"]
    assert keys(index, "省医报告") == ["广东省人民医院"]


# ---------------------------------------------------------------- the index itself


def test_explicit_name_or_alias_claimed_by_two_keys_is_a_collision() -> None:
    """GIVEN two rows sharing the alias 中山医院 WHEN collisions are listed THEN the alias is reported with both."""
    index = NameIndex()
    index.add("甲", "中山大学附属第一医院", ("中山医院",))
    index.add("乙", "中山市人民医院", ("中山医院",))
    index.freeze()
    assert index.collisions() == ["中山医院 → 乙 / 甲"]


def test_lookup_exact_matches_a_whole_normalised_variant_only() -> None:
    """GIVEN a name with an alias WHEN looked up exactly THEN the alias and the name match, a part does not."""
    index = index_of(("中山大学附属第三医院", ("中山三院",)))
    assert index.lookup_exact(normalise("中山三院")) == ["中山大学附属第三医院"]
    assert index.lookup_exact(normalise("中山大学附属第三医院")) == ["中山大学附属第三医院"]
    assert index.lookup_exact("中山") == []


def test_a_frozen_index_refuses_new_names() -> None:
    """GIVEN a frozen index WHEN a name is added THEN RuntimeError."""
    index = index_of(PANYU_2)
    with pytest.raises(RuntimeError):
        index.add(PANYU_3, PANYU_3)
