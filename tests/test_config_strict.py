"""config.toml is strict: an unknown key or section is an error that names it and the nearest valid one,
and the campaign's recognition rules are loaded from [campaign] (no defaults hidden in code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from tests.conftest import ROOT, write_config


def _with_lines(path: Path, section: str, *lines: str) -> Path:
    """Insert raw TOML lines right after the `[section]` header of a written config."""
    text = path.read_text(encoding="utf-8")
    header = f"[{section}]\n"
    assert header in text
    path.write_text(text.replace(header, header + "".join(f"{line}\n" for line in lines), 1), encoding="utf-8")
    return path


def test_the_shipped_config_loads_and_carries_todays_campaign_rules() -> None:
    """GIVEN the project's config.toml WHEN loaded THEN it passes the strict check and its rules are
    the Annex 2 template's three sections, the first two required."""
    rules = load_config(ROOT / "config.toml").campaign.rules
    assert rules.topic_words == ("健康码", "健康卡", "码管平台")
    assert rules.section_titles == ("基本情况", "整改措施及完成时限", "其他需要说明的事项")
    assert rules.required_sections == ("基本情况", "整改措施及完成时限")
    assert rules.sections[1].heading == ("整改措施", "整改情况")
    assert rules.numbered("整改措施及完成时限") == "二、整改措施及完成时限"
    assert rules.template_label == "附件2"
    assert rules.complete_label == "三部分齐全"  # the workbook column clerks know


def test_a_misspelt_key_is_named_with_the_nearest_valid_one(tmp_path: Path) -> None:
    """GIVEN `pol_minutes = 5` in [schedule] WHEN loading THEN a Chinese error names the key and suggests poll_minutes."""
    path = _with_lines(write_config(tmp_path), "schedule", "pol_minutes = 5")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "未知配置项 [schedule] pol_minutes，是否想写 poll_minutes？" in str(err.value)


def test_a_misspelt_section_is_named_with_the_nearest_valid_one(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + "\n[remnders]\nsend = true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "未知配置节 [remnders]，是否想写 [reminders]？" in str(err.value)


def test_an_unknown_key_with_no_near_match_lists_the_valid_ones(tmp_path: Path) -> None:
    path = _with_lines(write_config(tmp_path), "digest", "zzz = 1")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "未知配置项 [digest] zzz（可用的有：to）" in str(err.value)


def test_a_misspelt_key_inside_a_template_section_is_named(tmp_path: Path) -> None:
    """GIVEN a section rule with `requird` WHEN loading THEN the error names sections[1] and suggests required."""
    path = write_config(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert 'required = true' in text
    path.write_text(text.replace("required = true", "requird = true", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "未知配置项 [campaign] sections[1] requird，是否想写 required？" in str(err.value)


def test_a_relative_data_dir_is_taken_from_the_config_files_folder(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """GIVEN [storage] data_dir = "var" WHEN intake runs from another folder THEN the data dir is the one
    beside config.toml, not a new "var" wherever the operator happens to stand."""
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write_config(folder, {"storage": {"data_dir": "var"}})
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("INTAKE_DATA_DIR", raising=False)
    assert load_config(path).data_dir == (folder / "var").resolve()


def test_a_key_that_is_read_only_sometimes_is_still_known(tmp_path: Path) -> None:
    """GIVEN [storage] data_dir and [reminders] templates (read conditionally before) WHEN a data dir
    is given on the command line THEN the file still loads, and templates is a real path field."""
    path = write_config(tmp_path, {"reminders": {"templates": "mail-templates"}})
    config = load_config(path, data_dir=tmp_path / "elsewhere")
    assert config.data_dir == (tmp_path / "elsewhere").absolute()
    assert config.reminders.templates == tmp_path / "mail-templates"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("topic_words", [], "[campaign] topic_words: 必须填写"),
        ("sections", [], "[campaign] sections: 必须填写"),
        ("sections", [{"title": "甲"}, {"title": "甲"}], "[campaign] sections: 章节标题不能重复"),
        ("sections", [{"heading": ["甲"]}], "[campaign] sections[1].title: 必须填写章节标题"),
    ],
)
def test_campaign_rules_are_required_and_checked(tmp_path: Path, key: str, value: object, message: str) -> None:
    path = write_config(tmp_path, {"campaign": {key: value}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)

