"""`intake web` (the clerks' console) and `intake user add|list|disable|enable|passwd|role`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pipeline.cli.app import (
    AsOfOpt,
    ConfigOpt,
    DataDirOpt,
    app,
    console,
    err_console,
    escape,
    load,
    local,
    opened,
    parse_as_of,
)
from pipeline.errors import IntakeError

user_app = typer.Typer(help="控制台账号：新建、列出、停用、改密码、改角色。", no_args_is_help=True)
app.add_typer(user_app, name="user")

ByOpt = Annotated[str | None, typer.Option("--by", help="操作人姓名，记入操作记录。默认取当前系统用户名。")]


def _read_password(prompt: str = "密码") -> str:
    """From the terminal (asked twice, not echoed), or the first line of stdin when it is not a TTY."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    import getpass  # termios: not for every command

    first = getpass.getpass(f"{prompt}：")
    if getpass.getpass(f"再输一次{prompt}：") != first:
        raise IntakeError("两次输入的密码不一致")
    return first


@app.command()
def web(
    host: Annotated[str, typer.Option("--host", help="监听地址。默认只在本机 127.0.0.1；局域网请放在 nginx（TLS）后面。")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="端口。")] = 8080,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """启动经办人员的网页控制台（总览、报送情况、待核对、来信、催报、操作、操作记录）。

    --as-of 固定控制台的"现在"（演示和培训用）；不写则按真实时间。
    """
    import uvicorn

    from pipeline.web.app import create_app

    cfg = load(config, data_dir)
    frozen = parse_as_of(as_of, cfg) if as_of else None
    application = create_app(cfg, clock=(lambda: frozen) if frozen else None)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]注意[/yellow]：控制台监听 {escape(host)}，请确认只能经由 TLS 反向代理访问。")
    console.print(f"控制台：http://{host}:{port}/" + (f"  （时间固定为 {local(frozen, cfg)}）" if frozen else ""))
    # X-Forwarded-Proto / -For are trusted only from a proxy on this machine.
    uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=True,
                forwarded_allow_ips="127.0.0.1", server_header=False)  # fmt: skip


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="账号名，如 李文。")],
    role: Annotated[str, typer.Option("--role", help="viewer（查看）、clerk（经办）或 admin（管理员）。")] = "clerk",
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """新建控制台账号。密码在终端输入两次；不是终端时从标准输入读第一行。"""
    from pipeline.context import current_actor
    from pipeline.users import ROLE_LABELS, add_user

    with opened(config, data_dir) as ctx:
        user = add_user(ctx, username, role, _read_password(), by=current_actor(by))
    console.print(f"已新建账号 {escape(user.username)}（{ROLE_LABELS[user.role]}）。")


@user_app.command("list")
def user_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """列出控制台账号。"""
    from pipeline.users import ROLE_LABELS, list_users

    with opened(config, data_dir) as ctx:
        users = list_users(ctx)
        cfg = ctx.config
    if not users:
        console.print("还没有账号。新建：intake user add 姓名 --role clerk")
    for u in users:
        state = "已停用" if u.disabled else "可用"
        console.print(f"{escape(u.username)}\t{u.role}（{ROLE_LABELS[u.role]}）\t{state}\t建于 {local(u.created_at, cfg)}")


@user_app.command("disable")
def user_disable(
    username: Annotated[str, typer.Argument(help="账号名。")],
    enable: Annotated[bool, typer.Option("--enable", help="重新启用。")] = False,
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """停用账号（立即退出其所有登录）；--enable 重新启用。"""
    from pipeline.context import current_actor
    from pipeline.users import set_disabled

    with opened(config, data_dir) as ctx:
        user = set_disabled(ctx, username, not enable, by=current_actor(by))
    console.print(f"账号 {escape(user.username)} {'已停用' if user.disabled else '已启用'}。")


@user_app.command("passwd")
def user_passwd(
    username: Annotated[str, typer.Argument(help="账号名。")],
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """设置新密码（该账号的所有登录随即失效）。"""
    from pipeline.context import current_actor
    from pipeline.users import set_password

    with opened(config, data_dir) as ctx:
        set_password(ctx, username, _read_password("新密码"), by=current_actor(by))
    console.print(f"已修改账号 {escape(username)} 的密码。")


@user_app.command("role")
def user_role(
    username: Annotated[str, typer.Argument(help="账号名。")],
    role: Annotated[str, typer.Argument(help="viewer、clerk 或 admin。")],
    by: ByOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """修改账号的角色。"""
    from pipeline.context import current_actor
    from pipeline.users import ROLE_LABELS, set_role

    with opened(config, data_dir) as ctx:
        set_role(ctx, username, role, by=current_actor(by))
    console.print(f"账号 {escape(username)} 的角色改为 {role}（{ROLE_LABELS[role]}）。")



