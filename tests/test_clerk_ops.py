"""What clerks and operators touch (issue 15, items 2, 3, 8): data files, config discovery, read-only commands.

Each test reproduces a frustration of the issue's Why with the real `intake` command (a subprocess, as a
clerk runs it) or the library function the command calls.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert

from pipeline.campaign_data import load_campaign_data
from pipeline.config import load_config
from pipeline.context import open_context
from pipeline.domain.contacts import read_contacts
from pipeline.domain.roster import load_roster
from pipeline.errors import ConfigError
from pipeline.outbound.reminders import run_reminders
from storage.schema import now_utc, schema_migrations

from .conftest import ROOT, write_config
from .test_ingest import sample_mail

INTAKE = [sys.executable, "-m", "pipeline"]


def intake(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    environ.update({"COLUMNS": "200", "PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([*INTAKE, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120)


def _contacts(tmp: Path, rows: list[list[str]], *, phone: bool = True) -> Path:
    data = tmp / "data"
    if not data.exists():
        import shutil

        shutil.copytree(ROOT / "data", data)
    with (data / "contacts.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["institution", "address", "person", "role", *(["phone"] if phone else [])])
        writer.writerows(rows)
    return write_config(tmp, data=data)


# ------------------------------------------------------------------ item 2: data files


def test_contacts_accept_every_documented_name(tmp_path):
    """GIVEN contacts naming bureaus by their bureaus.csv alias (越秀区卫生健康局, the README's 番禺区卫生健康局),
    a roster alias and a derived variant WHEN loaded THEN each resolves to its canonical unit, phone kept."""
    config = load_config(_contacts(tmp_path, [
        ["越秀区卫生健康局", "yx@yx.example", "陈一", "科员", "020-1"],
        ["番禺区卫生健康局", "py@py.example", "陈二", "科员", ""],
        ["中山三院", "zs3@zs.example", "陈三", "", "020-3"],
        ["胸科医院", "xk@xk.example", "陈四", "", ""],
        ["广州市 越秀区（卫生健康局）", "yx2@yx.example", "陈五", "", ""],
    ]))  # fmt: skip
    roster = load_roster(config.campaign)
    result = read_contacts(config.reminders.contacts, roster)
    assert result.problems == []
    got = {c.address: (c.institution, c.phone) for c in result.contacts}
    assert got["yx@yx.example"] == ("广州市越秀区卫生健康局", "020-1")
    assert got["py@py.example"][0] == roster.bureau_by_district["番禺"].name
    assert got["zs3@zs.example"] == ("中山大学附属第三医院", "020-3")
    assert got["xk@xk.example"][0] == "广州市胸科医院"
    assert got["yx2@yx.example"][0] == "广州市越秀区卫生健康局"


def test_a_bad_contacts_line_is_a_recorded_problem_not_a_stop(tmp_path):
    """GIVEN a contacts.csv with a typo on line 3 WHEN mail is taken in THEN ingest goes on with the good lines,
    the problem names file, line and the nearest valid name in Chinese, reminders refuse with it, and
    `intake health` reports it."""
    path = _contacts(tmp_path, [
        ["广州市胸科医院", "xk@xk.example", "陈四", "", ""],
        ["广州市胸科医阮", "typo@xk.example", "陈五", "", ""],
        ["广州市第一人民医院", "not-an-address", "陈六", "", ""],
    ])  # fmt: skip
    config = load_config(path)
    ctx = open_context(config)
    try:
        data = load_campaign_data(ctx)
        assert [c.address for c in data.contacts if c.source == "file"] == ["xk@xk.example"]
        assert len(data.problems) == 2
        assert "contacts.csv 第 3 行" in data.problems[0] and "广州市胸科医院" in data.problems[0]
        assert "第 4 行" in data.problems[1] and "不是电子邮件地址" in data.problems[1]
        with pytest.raises(ConfigError, match="第 3 行"):
            run_reminders(ctx, config.campaign.deadline, dry_run=True)
    finally:
        ctx.close()
    mail = tmp_path / "m.eml"
    mail.write_bytes(sample_mail(1))
    done = intake("ingest", str(mail), "--config", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = intake("messages", "--format", "csv", "--config", str(path), cwd=tmp_path)
    assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) == 2, listed
    health = intake("health", "--config", str(path), cwd=tmp_path)
    assert health.returncode == 1 and "第 3 行" in health.stdout + health.stderr, health


def test_exempt_accepts_a_variant_and_unknown_names_get_the_nearest(tmp_path):
    """GIVEN [campaign] exempt naming a unit by an alias THEN the roster marks the canonical row; an unknown
    name is refused in Chinese with the nearest valid name."""
    roster = load_roster(load_config(write_config(tmp_path / "a", {"campaign": {"exempt": ["中山三院"]}})).campaign)
    assert roster.exempt_names == ("中山大学附属第三医院",)
    config = load_config(write_config(tmp_path / "b", {"campaign": {"exempt": ["广州市胸科医阮"]}}))
    with pytest.raises(ConfigError, match="是否想写「广州市胸科医院」"):
        load_roster(config.campaign)


# ------------------------------------------------------------------ item 3: config discovery, read-only


def test_config_is_found_and_the_error_names_the_search_order(tmp_path):
    """GIVEN no config in the current folder WHEN `intake status` runs THEN exit 2 with a Chinese error listing
    --config, INTAKE_CONFIG, ./config.toml and /etc/intake/config.toml; with INTAKE_CONFIG or --config (before or
    after the subcommand) it works."""
    if Path("/etc/intake/config.toml").exists():
        pytest.skip("this machine has /etc/intake/config.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = intake("status", cwd=elsewhere)
    assert missing.returncode == 2
    assert "找不到配置文件" in missing.stderr
    for word in ("--config", "INTAKE_CONFIG", "config.toml", "/etc/intake/config.toml"):
        assert word in missing.stderr
    path = write_config(tmp_path / "campaign")
    open_context(load_config(path)).close()  # a writing command has created the data dir
    for args, env in ((["status"], {"INTAKE_CONFIG": str(path)}), (["--config", str(path), "status"], None),
                      (["status", "--config", str(path)], None)):  # fmt: skip
        done = intake(*args, "--format", "csv", cwd=elsewhere, env=env)
        assert done.returncode == 0, (args, done.stderr)
        assert len(done.stdout.strip().splitlines()) == 97


@pytest.mark.parametrize("command", ["status", "messages", "review", "audit", "health", "outbox", "contacts"])
def test_read_only_commands_never_create_a_data_dir(tmp_path, command):
    """GIVEN a --data-dir typo WHEN a read-only command runs THEN exit 2 naming the folder, and nothing created
    (before: an empty database and "95 units overdue" with exit 0; health created the dir as root)."""
    path = write_config(tmp_path)
    typo = tmp_path / "vra"
    done = intake(command, "--data-dir", str(typo), "--config", str(path), cwd=tmp_path)
    assert done.returncode == 2, done
    assert "数据目录不存在" in done.stderr and str(typo) in done.stderr.replace("\n", "")
    assert not typo.exists()
    before = intake("--data-dir", str(typo), command, "--config", str(path), cwd=tmp_path)
    assert before.returncode == 2 and not typo.exists()


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    """GIVEN a database with a migration this code does not know WHEN any command opens it THEN it is refused."""
    path = write_config(tmp_path)
    ctx = open_context(load_config(path))
    with ctx.db.begin() as conn:
        conn.execute(insert(schema_migrations).values(name="9999_from_the_future", applied_at=now_utc()))
    ctx.close()
    for command in ("status", "report"):
        done = intake(command, "--config", str(path), cwd=tmp_path)
        assert done.returncode == 2 and "更新版本" in done.stderr and "9999_from_the_future" in done.stderr


# ------------------------------------------------------------------ item 8: conventions


def test_every_help_line_is_chinese_and_brackets_survive(tmp_path):
    """GIVEN every command THEN its help and every option's help contain Chinese, and `intake run --help`
    shows [schedule] as written (rich markup used to eat it)."""
    import typer.main

    from pipeline.cli import app

    command = typer.main.get_command(app)
    cjk = re.compile(r"[\u4e00-\u9fff]")

    def walk(cmd, path):  # noqa: ANN001
        assert cjk.search(cmd.help or ""), f"{path}: {cmd.help!r}"
        for param in cmd.params:
            if getattr(param, "help", None) is not None or param.param_type_name == "option":
                assert cjk.search(param.help or ""), f"{path} {param.name}: {param.help!r}"
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(command, "intake")
    shown = intake("run", "--help", cwd=tmp_path)
    assert "[schedule]" in shown.stdout and "显示本帮助并退出" in shown.stdout
    bad = write_config(tmp_path, {"campaign": {"exempt": ["没有这个单位"]}})
    err = intake("roster", "check", "--config", str(bad), cwd=tmp_path)
    assert err.returncode == 2 and "[campaign] exempt" in err.stderr, err


def test_excel_csv_and_the_stable_contract(tmp_path):
    """GIVEN stored mail WHEN a clerk asks for --excel THEN status and review give UTF-8 with BOM, Chinese headers
    and Chinese statuses (before: no BOM, English headers and codes: mojibake in Chinese Excel), while
    --format csv keeps its columns; `intake messages` CSV/JSON gain TRAILING message_id_header and sender_name."""
    import json

    from .test_message_parsing import b64word, message

    path = write_config(tmp_path)
    mail = tmp_path / "m.eml"
    mail.write_bytes(message([b"Received: from mx by mail.gz.gov.cn; Tue, 09 Jul 2024 10:00:00 +0800",
                              b"From: " + b64word("王敏") + b" <wm@hospital.example>",
                              b"Subject: " + b64word("[急] 第1封测试邮件"), b"Message-ID: <m1@hospital.example>"],
                             "正文".encode()))  # fmt: skip
    assert intake("ingest", str(mail), "--config", str(path), cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")

    def raw(*args: str) -> bytes:
        done = subprocess.run([*INTAKE, *args, "--config", str(path)], cwd=tmp_path, env=env, capture_output=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    excel = raw("status", "--excel")
    assert excel.startswith(b"\xef\xbb\xbf")
    text = excel.decode("utf-8-sig")
    assert text.splitlines()[0] == "机构,区,渠道,状态,首次收到,最近收到,次数,需核对,发件人"
    assert "逾期未报" in text and "overdue" not in text
    plain = raw("status", "--format", "csv").decode()
    assert not plain.startswith("\ufeff") and plain.splitlines()[0].startswith("institution,district,channel,status")
    assert ",overdue," in plain
    review = raw("review", "--excel")
    assert review.startswith(b"\xef\xbb\xbf") and review.decode("utf-8-sig").splitlines()[0].startswith("条目,")
    header, row = raw("messages", "--format", "csv").decode().splitlines()[:2]
    assert header == "message_id,received_at,sender,subject,kind,institutions,message_id_header,sender_name"
    assert row.endswith(",m1@hospital.example,王敏")  # the RFC Message-ID as stored (without <>)
    record = json.loads(raw("messages", "--format", "json"))[0]
    assert list(record)[-2:] == ["message_id_header", "sender_name"] and record["sender_name"] == "王敏"
    shown = raw("messages").decode()
    assert "[急] 第1封测试邮件" in shown  # rich markup no longer eats the bracketed word


def test_a_broken_mail_template_is_reported_by_health_and_never_stops_intake(tmp_path):
    """GIVEN an override template that does not compile WHEN mail is ingested THEN it is taken in, and
    `intake health` names the template; reminders refuse with the same error."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "reminder_direct.txt.j2").write_text("主题：{% if %}\n", encoding="utf-8")
    path = write_config(tmp_path, {"reminders": {"templates": str(folder)}})
    mail = tmp_path / "m.eml"
    mail.write_bytes(sample_mail(1))
    assert intake("ingest", str(mail), "--config", str(path), cwd=tmp_path).returncode == 0
    health = intake("health", "--config", str(path), cwd=tmp_path)
    assert health.returncode == 1 and "reminder_direct.txt.j2" in health.stdout + health.stderr, health
