"""Shared fixtures: a throw-away config and data dir built from the project's real data files."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.context import Context, open_context

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins: list[str] = ["tests.dovecot", "tests.smtp"]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_config(
    tmp: Path, overrides: dict[str, dict[str, object]] | None = None, *, data: Path | None = None
) -> Path:
    """A config.toml in `tmp` built from the project's, with its data files copied beside it.

    `overrides` maps section -> key -> value, e.g. {"mailbox": {"port": 10143}}; `data` is a
    folder with roster.csv / bureaus.csv / contacts.csv (default: the project's data/).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / "data"
    if not target.exists():
        shutil.copytree(data or ROOT / "data", target)
    settings = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    settings["storage"]["data_dir"] = str(tmp / "var")
    for section, values in (overrides or {}).items():
        settings.setdefault(section, {}).update(values)
    lines = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    path = tmp / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path)


@pytest.fixture
def ctx(config: Config) -> Context:
    context = open_context(config)
    yield context
    context.close()
