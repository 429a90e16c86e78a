"""Where a password comes from: an environment variable or an owner-only file, resolved when needed."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError

# Passwords read from the environment, removed from it at once: a child process (parser, browser,
# a hook) never inherits them.  Kept here, not on the Secret, so no repr of the config shows one.
_ENV_SECRETS: dict[str, str] = {}


def take_env_secret(name: str) -> str:
    """The password in environment variable `name`; the variable is removed on first read."""
    value = os.environ.pop(name, "")
    if value:
        _ENV_SECRETS[name] = value
    return _ENV_SECRETS.get(name, "")


@dataclass(frozen=True)
class Secret:
    """Where a password comes from: an environment variable or an owner-only file."""

    env: str = ""
    file: Path | None = None

    def resolve(self, what: str) -> str:
        if self.env and (value := take_env_secret(self.env)):
            return value
        if self.file is not None:
            try:
                mode = self.file.stat().st_mode
            except OSError as err:
                raise ConfigError(f"{what}：无法读取密码文件 {self.file}：{err}") from err
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"{what}：密码文件 {self.file} 其他用户可读，请执行 chmod 600"
                )
            return self.file.read_text(encoding="utf-8").strip()
        hint = f"请设置环境变量 {self.env}" if self.env else "请配置 password_file"
        raise ConfigError(f"{what}：没有可用的密码（{hint}）")
