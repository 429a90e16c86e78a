"""Load config.toml once into frozen dataclasses.

Nothing else in the project reads the file or the environment for settings:
the loaded `Config` is passed down.  Secrets are never read from the file; the
`Secret` helpers resolve them from an environment variable or a protected file
at the moment they are needed.

The file is strict: every key read here is recorded, and a key or section that
nothing reads is an error naming it and the nearest valid one (a typo such as
`pol_minutes = 5` must not pass silently with the default in its place).

The campaign's recognition rules (topic words, the template's sections) are data
here (`Campaign.rules`), compiled once by `pipeline.domain.recognition.Recognizer`.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parsers.types import ParseLimits
from pipeline.config_discovery import find_config, search_order
from pipeline.config_secret import Secret, take_env_secret
from pipeline.errors import ConfigError

DATA_DIR_ENV = "INTAKE_DATA_DIR"


# Numbers a template section heading may carry, by position: 一、 or 1.
SECTION_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
_SECTION_KEYS = ("title", "heading", "required")


@dataclass(frozen=True)
class SectionRule:
    """One section of the campaign's report template, numbered by its position (一、/1.).

    `heading` lists the words a heading may use after its number ("整改措施" or
    "整改情况"); `required` sections, when empty, earn the sender a request for a
    corrected file.
    """

    title: str
    heading: tuple[str, ...]
    required: bool


@dataclass(frozen=True)
class CampaignRules:
    """What makes a document a report of this campaign, from `[campaign]` in config.toml."""

    topic_words: tuple[str, ...]  # a report's title (or a headings-only report's top) names one of them
    sections: tuple[SectionRule, ...]  # the template's sections, in order
    template_label: str  # how the notice names the template ("附件2"), used in reasons and mails

    @property
    def section_titles(self) -> tuple[str, ...]:
        return tuple(s.title for s in self.sections)

    @property
    def required_sections(self) -> tuple[str, ...]:
        return tuple(s.title for s in self.sections if s.required)

    @property
    def complete_label(self) -> str:
        """The workbook's column for "every section filled": 三部分齐全 for a three-section template."""
        count = len(self.sections)
        return f"{'两' if count == 2 else SECTION_NUMERALS[count - 1]}部分齐全" if count > 1 else "内容齐全"

    def numbered(self, title: str) -> str:
        """A section title with its template number: "一、基本情况"."""
        return f"{SECTION_NUMERALS[self.section_titles.index(title)]}、{title}"


@dataclass(frozen=True)
class Campaign:
    name: str
    notice: str
    deadline: datetime
    timezone: ZoneInfo
    roster: Path
    bureaus: Path
    exempt: tuple[str, ...]
    mailbox_address: str
    own_domains: tuple[str, ...]
    rules: CampaignRules
    # Clerk-maintained holiday table (pipeline.holidays); None: chinese_calendar alone.
    holidays: Path | None = None
    contact_person: str = ""  # who units may call about the campaign
    contact_phone: str = ""


@dataclass(frozen=True)
class Storage:
    data_dir: Path
    database_url: str  # "" means SQLite in the data dir


@dataclass(frozen=True)
class Mailbox:
    host: str
    port: int
    security: str
    username: str
    password: Secret
    folders: tuple[str, ...]
    ca_file: Path | None
    timeout_s: float
    imap_id: dict[str, str]
    batch_size: int
    mark_keyword: str


@dataclass(frozen=True)
class Schedule:
    poll_minutes: int
    report_at: time
    remind_at: time
    idle: bool = True  # IMAP IDLE: poll at once when mail arrives (pipeline.inbound.idle)


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    security: str
    username: str
    password: Secret
    ca_file: Path | None
    from_address: str
    from_name: str


@dataclass(frozen=True)
class Reminders:
    send: bool
    contacts: Path
    before_deadline_days: tuple[int, ...]
    overdue_every_working_days: int
    max_overdue_reminders: int
    quiet_hours: tuple[time, time] | None
    templates: Path | None = None  # a folder of mail templates that override the built-in ones


@dataclass(frozen=True)
class Health:
    """Thresholds of `intake health` ([health] in config.toml)."""

    min_free_mb: int = 1024
    report_max_age_hours: float = 26.0
    holiday_lookahead_days: int = 30


@dataclass(frozen=True)
class Receipts:
    send_acknowledgements: bool
    send_corrections: bool


@dataclass(frozen=True)
class Config:
    path: Path
    campaign: Campaign
    storage: Storage
    limits: ParseLimits
    max_message_bytes: int
    mailbox: Mailbox
    schedule: Schedule
    smtp: Smtp
    reminders: Reminders
    receipts: Receipts
    digest_to: tuple[str, ...]
    authserv_id: str
    # [limits]: parse each message in a stoppable worker process (pipeline.inbound.sandbox).
    isolate_parsing: bool = True
    parse_timeout_s: float = 60.0
    parse_memory_mb: int = 1536
    health: Health = field(default_factory=Health)
    parse_workers: int = 0  # text-lane parser processes; 0: one per free core less one (pipeline.inbound.pool)
    ocr_workers: int = 0  # OCR-lane parser processes; 0: one per core

    @property
    def data_dir(self) -> Path:
        return self.storage.data_dir


def load_config(path: Path | str | None = None, *, data_dir: Path | str | None = None) -> Config:
    """Read and validate config.toml (found by `find_config`); `data_dir` (or $INTAKE_DATA_DIR) overrides the file's."""
    cfg_path = find_config(path)
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"找不到配置文件 {cfg_path.absolute()}（查找顺序：{search_order()}）") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"无法读取配置文件 {cfg_path}：{err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{cfg_path}：不是有效的 TOML 格式：{err}") from err
    base = cfg_path.resolve().parent
    reader = _Reader(raw, cfg_path, base)

    tz_name = reader.str("campaign", "timezone", "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"{cfg_path}：[campaign] timezone：未知时区「{tz_name}」") from err
    deadline = reader.datetime("campaign", "deadline", tz)
    campaign = Campaign(
        name=reader.required_str("campaign", "name"),
        notice=reader.str("campaign", "notice", ""),
        deadline=deadline,
        timezone=tz,
        roster=reader.path("campaign", "roster", "data/roster.csv"),
        bureaus=reader.path("campaign", "bureaus", "data/bureaus.csv"),
        exempt=tuple(reader.list("campaign", "exempt", [])),
        mailbox_address=reader.str("campaign", "mailbox_address", "").lower(),
        own_domains=tuple(d.lower() for d in reader.list("campaign", "own_domains", [])),
        rules=_campaign_rules(reader),
        holidays=reader.optional_path("campaign", "holidays"),
        contact_person=reader.str("campaign", "contact_person", "").strip(),
        contact_phone=reader.str("campaign", "contact_phone", "").strip(),
    )

    env_dir = os.environ.get(DATA_DIR_ENV)
    file_dir = reader.str("storage", "data_dir", "var")  # read (and so checked) even when overridden
    if data_dir is not None:
        chosen_dir = Path(data_dir)
    elif env_dir:
        chosen_dir = Path(env_dir)
    else:  # relative to the config file's folder, like every other path in it (not to where intake runs)
        chosen_dir = base / file_dir
    storage = Storage(data_dir=chosen_dir.absolute(), database_url=reader.str("storage", "database_url", ""))

    limit_defaults = ParseLimits()
    limit_values: dict[str, Any] = {}
    for f in fields(ParseLimits):
        default = getattr(limit_defaults, f.name)
        if isinstance(default, bool):  # set by the program (defer_ocr: the parser pool), not by operators
            continue
        limit_values[f.name] = reader.number("limits", f.name, default, type(default))
    limits = ParseLimits(**limit_values)

    security = reader.choice("mailbox", "security", "tls", ("tls", "starttls", "plain"))
    mailbox = Mailbox(
        host=reader.str("mailbox", "host", "localhost"),
        port=int(reader.number("mailbox", "port", 993 if security == "tls" else 143, int)),
        security=security,
        username=reader.str("mailbox", "username", ""),
        password=Secret(
            reader.str("mailbox", "password_env", ""),
            reader.optional_path("mailbox", "password_file"),
        ),
        folders=tuple(reader.list("mailbox", "folders", ["INBOX"])),
        ca_file=reader.optional_path("mailbox", "ca_file"),
        timeout_s=float(reader.number("mailbox", "timeout_s", 60.0, float)),
        imap_id={str(k): str(v) for k, v in reader.table("mailbox", "imap_id").items()},
        batch_size=int(reader.number("mailbox", "batch_size", 50, int)),
        mark_keyword=reader.str("mailbox", "mark_keyword", ""),
    )
    schedule = Schedule(
        poll_minutes=int(reader.number("schedule", "poll_minutes", 5, int)),
        report_at=reader.clock("schedule", "report_at", "08:30"),
        remind_at=reader.clock("schedule", "remind_at", "09:00"),
        idle=reader.bool("schedule", "idle", True),
    )
    smtp_security = reader.choice("smtp", "security", "tls", ("tls", "starttls", "plain"))
    smtp = Smtp(
        host=reader.str("smtp", "host", "localhost"),
        port=int(reader.number("smtp", "port", 465 if smtp_security == "tls" else 25, int)),
        security=smtp_security,
        username=reader.str("smtp", "username", ""),
        password=Secret(
            reader.str("smtp", "password_env", ""), reader.optional_path("smtp", "password_file")
        ),
        ca_file=reader.optional_path("smtp", "ca_file"),
        from_address=reader.str("smtp", "from_address", campaign.mailbox_address),
        from_name=reader.str("smtp", "from_name", ""),
    )
    for secret in (mailbox.password, smtp.password):
        if secret.env:  # out of the environment now, before any child process is started
            take_env_secret(secret.env)
    quiet = reader.list("reminders", "quiet_hours", [])
    if quiet and len(quiet) != 2:
        raise ConfigError(f'{cfg_path}：[reminders] quiet_hours 应为两个时刻，例如 ["20:00", "08:00"]')
    reminders = Reminders(
        send=reader.bool("reminders", "send", False),
        contacts=reader.path("reminders", "contacts", "data/contacts.csv"),
        before_deadline_days=tuple(int(d) for d in reader.list("reminders", "before_deadline_days", [2, 0])),
        overdue_every_working_days=int(reader.number("reminders", "overdue_every_working_days", 2, int)),
        max_overdue_reminders=int(reader.number("reminders", "max_overdue_reminders", 3, int)),
        quiet_hours=(_parse_clock(quiet[0], cfg_path), _parse_clock(quiet[1], cfg_path)) if quiet else None,
        templates=reader.optional_path("reminders", "templates"),
    )
    receipts = Receipts(
        send_acknowledgements=reader.bool("receipts", "send_acknowledgements", True),
        send_corrections=reader.bool("receipts", "send_corrections", True),
    )
    config = Config(
        path=cfg_path.resolve(),
        campaign=campaign,
        storage=storage,
        limits=limits,
        max_message_bytes=int(reader.number("limits", "max_message_bytes", 50_000_000, int)),
        mailbox=mailbox,
        schedule=schedule,
        smtp=smtp,
        reminders=reminders,
        receipts=receipts,
        digest_to=tuple(reader.list("digest", "to", [])),
        authserv_id=reader.str("security", "authserv_id", "").lower(),
        isolate_parsing=reader.bool("limits", "isolate_parsing", True),
        parse_timeout_s=float(reader.number("limits", "parse_timeout_s", 60.0, float)),
        parse_memory_mb=int(reader.number("limits", "parse_memory_mb", 1536, int)),
        health=Health(
            min_free_mb=int(reader.number("health", "min_free_mb", Health.min_free_mb, int)),
            report_max_age_hours=float(reader.number("health", "report_max_age_hours", Health.report_max_age_hours, float)),
            holiday_lookahead_days=int(reader.number("health", "holiday_lookahead_days", Health.holiday_lookahead_days, int)),
        ),
        parse_workers=int(reader.number("limits", "parse_workers", 0, int)),
        ocr_workers=int(reader.number("limits", "ocr_workers", 0, int)),
    )
    reader.reject_unknown()  # last: every key above has been read by now
    return config


def _campaign_rules(reader: _Reader) -> CampaignRules:
    """`[campaign] topic_words`, `sections` and `template_label`: required, the campaign is meaningless without them."""
    topic = tuple(str(w).strip() for w in reader.list("campaign", "topic_words", []) if str(w).strip())
    if not topic:
        raise reader.fail("campaign", "topic_words", '必须填写，例如 ["健康码", "健康卡"]')
    entries = reader.list("campaign", "sections", [])
    if not entries:
        raise reader.fail("campaign", "sections", '必须填写模板的章节，例如 [{ title = "基本情况" }]')
    if len(entries) > len(SECTION_NUMERALS):
        raise reader.fail("campaign", "sections", f"最多 {len(SECTION_NUMERALS)} 个章节")
    sections = []
    for number, entry in enumerate(entries, start=1):
        where = f"sections[{number}]"
        if not isinstance(entry, dict):
            raise reader.fail("campaign", where, '必须写成 { title = "...", heading = ["..."], required = true }')
        reader.reject_unknown_in(entry, f"[campaign] {where}", _SECTION_KEYS)
        title = entry.get("title")
        if not isinstance(title, str) or not title.strip():
            raise reader.fail("campaign", f"{where}.title", "必须填写章节标题")
        heading = entry.get("heading", [title])
        if isinstance(heading, str):
            heading = [heading]
        if not isinstance(heading, list) or not heading or not all(isinstance(h, str) and h.strip() for h in heading):
            raise reader.fail("campaign", f"{where}.heading", "必须是一组非空的词，例如 [\"整改措施\", \"整改情况\"]")
        required = entry.get("required", False)
        if not isinstance(required, bool):
            raise reader.fail("campaign", f"{where}.required", "必须是 true 或 false")
        sections.append(SectionRule(title.strip(), tuple(h.strip() for h in heading), required))
    titles = [s.title for s in sections]
    if len(set(titles)) != len(titles):
        raise reader.fail("campaign", "sections", "章节标题不能重复")
    return CampaignRules(
        topic_words=topic,
        sections=tuple(sections),
        template_label=reader.str("campaign", "template_label", ""),
    )


def _suggest(wrong: str, valid: list[str], form: str) -> str:
    """"，是否想写 X？" for the nearest valid name, or the list of valid names when none is near."""
    close = difflib.get_close_matches(wrong, valid, n=1, cutoff=0.6)
    if close:
        return f"，是否想写 {form.format(close[0])}？"
    return f"（可用的有：{'、'.join(form.format(v) for v in valid)}）"


def _parse_clock(value: str, cfg_path: Path) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as err:
        raise ConfigError(f'{cfg_path}：「{value}」不是一天中的时刻（例如 "08:30"）') from err


class _Reader:
    """Typed access to the TOML tables, with errors that name the key."""

    def __init__(self, raw: dict[str, Any], cfg_path: Path, base: Path) -> None:
        self.raw = raw
        self.cfg_path = cfg_path
        self.base = base
        self.known: dict[str, set[str]] = {}  # section -> keys read: the schema, by construction

    def _get(self, section: str, key: str, default: Any) -> Any:
        self.known.setdefault(section, set()).add(key)
        table = self.raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{self.cfg_path}：[{section}] 应为一个配置节（表）")
        return table.get(key, default)

    def fail(self, section: str, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.cfg_path}: [{section}] {key}: {what}")


    def reject_unknown(self) -> None:
        """Raise for the first section or key of the file that no setting reads (a typo, most likely)."""
        sections = sorted(self.known)
        for section, table in self.raw.items():
            if section not in self.known:
                raise ConfigError(f"{self.cfg_path}: 未知配置节 [{section}]{_suggest(section, sections, '[{}]')}")
            if isinstance(table, dict):
                self.reject_unknown_in(table, f"[{section}]", tuple(sorted(self.known[section])))

    def reject_unknown_in(self, table: dict[str, Any], where: str, valid: tuple[str, ...]) -> None:
        for key in table:
            if key not in valid:
                raise ConfigError(f"{self.cfg_path}: 未知配置项 {where} {key}{_suggest(key, list(valid), '{}')}")

    def required_str(self, section: str, key: str) -> str:
        value = self.str(section, key, "")
        if not value.strip():
            raise self.fail(section, key, "必须填写")
        return value

    def str(self, section: str, key: str, default: str) -> str:
        value = self._get(section, key, default)
        if not isinstance(value, str):
            raise self.fail(section, key, "应为字符串（用引号括起来）")
        return value

    def bool(self, section: builtins.str, key: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self._get(section, key, default)
        if not isinstance(value, bool):
            raise self.fail(section, key, "应为 true 或 false")
        return value

    def number(self, section: builtins.str, key: builtins.str, default: Any, kind: type) -> Any:
        value = self._get(section, key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(section, key, "应为数字")
        if value < 0:
            raise self.fail(section, key, "不能为负数")
        return kind(value)

    def list(self, section: builtins.str, key: builtins.str, default: builtins.list[Any]) -> builtins.list[Any]:
        value = self._get(section, key, default)
        if not isinstance(value, list):
            raise self.fail(section, key, "应为列表，例如 [\"a\", \"b\"]")
        return value

    def table(self, section: builtins.str, key: builtins.str) -> dict[builtins.str, Any]:
        value = self._get(section, key, {})
        if not isinstance(value, dict):
            raise self.fail(section, key, '应写成 { name = "..." } 的形式')
        return value

    def choice(self, section: builtins.str, key: builtins.str, default: builtins.str, allowed: tuple[builtins.str, ...]) -> builtins.str:
        value = self.str(section, key, default)
        if value not in allowed:
            raise self.fail(section, key, f"应为以下之一：{'、'.join(allowed)}")
        return value

    def path(self, section: builtins.str, key: builtins.str, default: builtins.str) -> Path:
        return self.base / self.str(section, key, default)

    def optional_path(self, section: builtins.str, key: builtins.str) -> Path | None:
        value = self.str(section, key, "")
        return self.base / value if value else None

    def datetime(self, section: builtins.str, key: builtins.str, tz: ZoneInfo) -> _dt.datetime:
        value = self._get(section, key, None)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as err:
                raise self.fail(
                    section, key, "应为 ISO 8601 时间，例如 2024-07-10T23:59:59+08:00"
                ) from err
        if not isinstance(value, datetime):
            raise self.fail(section, key, "is required (ISO 8601 time)")
        return value if value.tzinfo else value.replace(tzinfo=tz)

    def clock(self, section: builtins.str, key: builtins.str, default: builtins.str) -> time:
        value = self._get(section, key, default)
        if isinstance(value, time):
            return value
        if not isinstance(value, str):
            raise self.fail(section, key, '应为一天中的时刻，例如 "08:30"')
        return _parse_clock(value, self.cfg_path)
