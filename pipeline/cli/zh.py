"""Chinese for the words Typer and its bundled Click print around our help texts.

Typer 0.29 bundles Click (typer._click) with English literals; the help screen's own words
(用法 / 选项 / 命令 / 参数, the --help line, [默认：…]) are what a clerk reads on every
`--help`, so they are replaced here, once, when the CLI is imported.  Error messages from
argument parsing stay Click's (they name the option, which is what matters).
"""

from __future__ import annotations

from typing import Any

WORDS = {
    "Options": "选项",
    "Commands": "命令",
    "Arguments": "参数",
    "[default: {}]": "[默认：{}]",
    "default: {default}": "默认：{default}",
    "[required]": "[必填]",
    "required": "必填",
    "[env var: {}]": "[环境变量：{}]",
    "env var: {var}": "环境变量：{var}",
    "(deprecated) ": "（已弃用）",
    "Aborted!": "已中止。",
    "Aborted.": "已中止。",
    "Error": "错误",
    "Missing command.": "缺少子命令。",
    "No such command {name!r}.": "没有这个命令：{name!r}。",
}
HELP_LINE = "显示本帮助并退出。"
COMPLETION_HELP = {
    "Install completion for the current shell.": "为当前 shell 安装命令补全。",
    "Show completion for the current shell, to copy it or customize the installation.": "显示当前 shell 的补全脚本，可复制或自行安装。",
    "Install completion for the specified shell.": "为指定的 shell 安装命令补全。",
    "Show completion for the specified shell, to copy it or customize the installation.": "显示指定 shell 的补全脚本，可复制或自行安装。",
}


def _translate(text: str) -> str:
    return WORDS.get(text, text)


def install() -> None:
    """Replace the help screen's English words (idempotent)."""
    import sys

    import typer.core
    from typer._click import core as click_core
    from typer._click import formatting

    setattr(typer.core, "_", _translate)  # noqa: B010 - typer.core's gettext, replaced by the Chinese table
    import inspect

    import typer.completion

    for func in (typer.completion._install_completion_placeholder_function,
                 typer.completion._install_completion_no_auto_placeholder_function):  # fmt: skip
        for parameter in inspect.signature(func).parameters.values():
            info = parameter.default
            if isinstance(getattr(info, "help", None), str):
                info.help = COMPLETION_HELP.get(info.help, info.help)
    rich_utils = sys.modules.get("typer.rich_utils")  # not imported for plain help (slow: markdown)
    if rich_utils is not None:
        rich_utils._ = _translate  # type: ignore[attr-defined]
        for name in ("ARGUMENTS_PANEL_TITLE", "OPTIONS_PANEL_TITLE", "COMMANDS_PANEL_TITLE"):
            setattr(rich_utils, name, _translate(getattr(rich_utils, name)))
    if getattr(click_core.Command.get_help_option, "_zh", False):
        return
    original_help = click_core.Command.get_help_option

    def get_help_option(self: Any, ctx: Any) -> Any:
        option = original_help(self, ctx)
        if option is not None:
            option.help = HELP_LINE
        return option

    get_help_option._zh = True  # type: ignore[attr-defined]
    click_core.Command.get_help_option = get_help_option  # type: ignore[method-assign]
    original_usage = formatting.HelpFormatter.write_usage

    def write_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        original_usage(self, prog, args, "用法：" if prefix is None else prefix)

    formatting.HelpFormatter.write_usage = write_usage  # type: ignore[method-assign]
