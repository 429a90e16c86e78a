"""Outgoing mail, composed: Chinese templates, safe header values and the MIME message.

Values from received mail (names, subjects, addresses) reach headers only
through `header_text`/`clean_address`, and display names only through
`email.headerregistry.Address`: a CR/LF in them cannot start a new header.
Messages carry encoded-word headers, a UTF-8 base64 body, a fixed Message-ID
in our domain, Date, Auto-Submitted (RFC 3834) and RFC 2231 attachment names.
Delivery and the ledger protocol are in `pipeline.outbound.mailer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from pipeline.config import SECTION_NUMERALS, Config
from pipeline.errors import ConfigError, DeliveryError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_ADDRESS = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"
)
_MSGID = re.compile(r"^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$")  # printable ASCII without < > or spaces


# ---------------------------------------------------------------- safe values


def header_text(value: str | None, limit: int = 200) -> str:
    """Text fit for a header: control characters (CR, LF, NUL ...) become spaces, runs collapse."""
    text = " ".join(_CONTROL.sub(" ", value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_address(value: str | None) -> str:
    """A lower-cased plain addr-spec, or "" when `value` is anything else (quotes, spaces, CR/LF)."""
    address = (value or "").strip().lower()
    return address if len(address) <= 254 and _ADDRESS.match(address) else ""


def message_id_ref(value: str | None) -> str:
    """A received Message-ID usable in In-Reply-To, or "" when it is malformed."""
    text = (value or "").strip()
    if text and not text.startswith("<"):
        text = f"<{text}>"
    return text if _MSGID.match(text) else ""


# ---------------------------------------------------------------- templates


@lru_cache(maxsize=8)
def _environment(folders: tuple[str, ...]) -> Environment:
    return Environment(
        loader=FileSystemLoader(list(folders)),
        autoescape=False,  # plain-text mail
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template_folders(config: Config) -> tuple[str, ...]:
    """The optional override folder ([reminders] templates) first, then the built-in templates."""
    override = config.reminders.templates
    folders = [str(override)] if override is not None else []
    return (*folders, str(TEMPLATE_DIR))


def check_templates(config: Config) -> list[str]:
    """A Chinese line per mail template (override folder first) that does not compile; [] when all do.

    For `intake health`: a broken template stops reminders and receipts (they refuse with the error),
    never the intake of mail, so monitoring must say so.
    """
    if config.reminders.templates is not None and not Path(config.reminders.templates).is_dir():
        return [f"[reminders] templates：找不到邮件模板文件夹 {config.reminders.templates}"]
    problems = []
    env = _environment(template_folders(config))
    for path in sorted(TEMPLATE_DIR.glob("*.txt.j2")):
        try:
            env.get_template(path.name)
        except TemplateError as err:
            problems.append(f"邮件模板 {path.name} 有误：{err}")
    return problems


def campaign_facts(config: Config) -> dict[str, object]:
    campaign = config.campaign
    deadline = campaign.deadline.astimezone(campaign.timezone)
    return {
        "campaign": campaign.name,
        "notice": campaign.notice,
        "template_name": f"{campaign.rules.template_label}《{campaign.name}（模板）》",
        "deadline": f"{deadline.year}年{deadline.month}月{deadline.day}日 {deadline:%H:%M}",
        "deadline_date": f"{deadline.year}年{deadline.month}月{deadline.day}日",
        "mailbox": campaign.mailbox_address or config.smtp.from_address,
        "office": config.smtp.from_name or "广州市卫生健康委员会",
        "contact_person": campaign.contact_person,
        "contact_phone": campaign.contact_phone,
        "signature": signature(config),
        "sections_text": "".join(f"“{campaign.rules.numbered(s.title)}”" for s in campaign.rules.sections),
        "sections_count": f"{SECTION_NUMERALS[len(campaign.rules.sections) - 1]}部分",
        "ask": "请",  # 烦请 to units the commission does not direct (pipeline.domain.courtesy); callers override
    }


def signature(config: Config) -> str:
    """The 落款: the office, then the contact person and phone when [campaign] names them."""
    campaign = config.campaign
    lines = [config.smtp.from_name or "广州市卫生健康委员会"]
    contact = "，".join(
        part
        for part in (
            f"联系人：{campaign.contact_person}" if campaign.contact_person else "",
            f"联系电话：{campaign.contact_phone}" if campaign.contact_phone else "",
        )
        if part
    )
    if contact:
        lines.append(f"（{contact}）")
    return "\n".join(lines)


def render(config: Config, name: str, **facts: object) -> tuple[str, str]:
    """Render a template into (subject, body).  Its first line must be "主题：…" (or "Subject: …")."""
    try:
        text = (
            _environment(template_folders(config))
            .get_template(name)
            .render({**campaign_facts(config), **facts})
        )
    except TemplateError as err:
        raise ConfigError(f"邮件模板 {name} 有误：{err}") from err
    first, _, rest = text.lstrip("\n").partition("\n")
    for prefix in ("主题：", "主题:", "Subject:"):
        if first.startswith(prefix):
            return header_text(first[len(prefix) :]), rest.strip("\n") + "\n"
    raise ConfigError(f"邮件模板 {name} 的第一行必须是“主题：……”")


def local_time(moment: datetime | None, config: Config) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(config.campaign.timezone)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


# ---------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class OutgoingMail:
    occasion: str
    kind: str  # reminder | receipt | correction | digest
    subject: str
    body: str
    to: tuple[Recipient, ...]
    cc: tuple[Recipient, ...] = ()
    institutions: tuple[str, ...] = ()
    auto_submitted: str = "auto-generated"  # receipts: auto-replied (RFC 3834)
    in_reply_to: str = ""
    attachments: tuple[Attachment, ...] = ()
    as_of: datetime | None = None
    note: str = ""

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(r.address for r in (*self.to, *self.cc)))


def _address(recipient: Recipient) -> Address:
    address = clean_address(recipient.address)
    if not address:
        raise DeliveryError(f"不是有效的邮件地址：{recipient.address!r}")
    local, _, domain = address.partition("@")
    return Address(display_name=header_text(recipient.name, 80), username=local, domain=domain)


def build_message(config: Config, mail: OutgoingMail, *, message_id: str, date: datetime) -> bytes:
    """The RFC 5322 bytes: encoded-word headers, UTF-8 base64 body, RFC 2231 attachment names."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _address(Recipient(config.smtp.from_address, config.smtp.from_name))
    msg["To"] = tuple(_address(r) for r in mail.to)
    if mail.cc:
        msg["Cc"] = tuple(_address(r) for r in mail.cc)
    msg["Subject"] = header_text(mail.subject, 180)
    msg["Date"] = format_datetime(date.astimezone(config.campaign.timezone))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = mail.auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"  # ask Exchange not to answer with out-of-office mail
    reply_to = message_id_ref(mail.in_reply_to)
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    msg.set_content(mail.body, charset="utf-8", cte="base64")
    for item in mail.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(
            item.data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=header_text(item.filename, 120),
        )  # RFC 2231: filename*=utf-8''...
    return msg.as_bytes(policy=policy.SMTP)
