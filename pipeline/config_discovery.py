"""Which config.toml a command uses: --config, then $INTAKE_CONFIG, then ./config.toml, then /etc/intake/config.toml."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import ConfigError

CONFIG_ENV = "INTAKE_CONFIG"
DEFAULT_CONFIG = Path("config.toml")
DEFAULT_CONFIGS = (DEFAULT_CONFIG, Path("/etc/intake/config.toml"))


def find_config(path: Path | str | None = None) -> Path:
    """The config file to use: `path` (--config), then $INTAKE_CONFIG, then ./config.toml, then
    /etc/intake/config.toml.  A named file (--config or the variable) must exist; otherwise the first
    of the defaults that exists.  The error lists the search order."""
    if path:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    for candidate in DEFAULT_CONFIGS:
        if candidate.is_file():
            return candidate
    raise ConfigError("找不到配置文件。查找顺序：" + search_order())


def search_order() -> str:
    return "；".join(["--config 参数", f"环境变量 {CONFIG_ENV}", *(str(p) for p in DEFAULT_CONFIGS)])
