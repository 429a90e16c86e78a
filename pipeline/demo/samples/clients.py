"""Mail-client profiles and the rendering of an abstract `Draft` into message bytes.

A `Draft` says what a mail contains (sender, subject, body, attachments, the
commission server's receipt time, the sender's possibly wrong clock).  A
`ClientStyle` says how a given client writes it: Foxmail labels GBK bytes
``gb2312`` and puts encoded-words in quoted file names, Outlook pairs RFC 2231
with RFC 2047, QQMail sends HTML only and splits encoded-words mid-character,
old clients write raw 8-bit GBK file names.  `render` combines both through
the byte builder in mime.py.
"""

from __future__ import annotations

import html
import random
import string
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pipeline.demo.samples import mime

SERVER = "mail.gz.gov.cn"


@dataclass(frozen=True)
class Mailbox:
    display: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[-1]


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class AttachedMessage:
    """A whole mail carried as a ``message/rfc822`` part (forward as attachment)."""

    raw: bytes
    filename: str = ""


@dataclass(frozen=True)
class Draft:
    """What a mail says, before any client-specific encoding."""

    sender: Mailbox
    to: tuple[Mailbox, ...]
    subject: str
    body: str
    received_at: datetime  # commission server receipt time: the topmost Received date
    sent_at: datetime | None  # the sender's Date: header; None = header missing
    attachments: tuple[Attachment | AttachedMessage, ...] = ()
    cc: tuple[Mailbox, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = ()
    with_message_id: bool = True


@dataclass(frozen=True)
class ClientStyle:
    """How one mail client encodes headers, bodies and attachment names."""

    name: str
    x_mailer: str  # "" when the client sends no X-Mailer
    header_charset: str
    header_encoding: str  # "B" or "Q"
    body_charset: str
    body_transfer: str  # base64 | quoted-printable | 8bit
    body_layout: str  # plain | html | alternative
    filename_style: str  # rfc2231 | rfc2047 | raw | ascii
    filename_charset: str
    forward_style: str  # see mime.forward_block
    address_style: str = "encoded"
    split_mid_char: bool = False
    raw_subject: bool = False  # 8-bit subject bytes, no encoded-words


_STYLES = {
    "foxmail": ClientStyle(
        "foxmail",
        "Foxmail 7.2.25.254[cn]",
        "gb2312",
        "B",
        "gb2312",
        "base64",
        "alternative",
        "rfc2047",
        "gb2312",
        "foxmail",
    ),
    "outlook": ClientStyle(
        "outlook",
        "Microsoft Outlook 16.0",
        "gb2312",
        "B",
        "gb2312",
        "quoted-printable",
        "alternative",
        "rfc2231",
        "utf-8",
        "outlook",
        "quoted-encoded",
    ),
    "qqmail": ClientStyle(
        "qqmail",
        "QQMail 2.x",
        "utf-8",
        "B",
        "utf-8",
        "base64",
        "html",
        "rfc2047",
        "utf-8",
        "qqmail",
        split_mid_char=True,
    ),
    "coremail": ClientStyle(
        "coremail",
        "Coremail Webmail Server Version XT5.0.14 build 20230109(e4b5cd3c)",
        "utf-8",
        "B",
        "utf-8",
        "base64",
        "alternative",
        "rfc2047",
        "utf-8",
        "coremail",
    ),
    "netease": ClientStyle(
        "netease",
        "NetEase Flash Mail 2.4.1.32",
        "gbk",
        "B",
        "gbk",
        "base64",
        "alternative",
        "rfc2047",
        "gbk",
        "coremail",
    ),
    "legacy": ClientStyle(
        "legacy",
        "Microsoft Outlook Express 6.00.2900.5512",
        "gb2312",
        "Q",
        "gb2312",
        "8bit",
        "plain",
        "raw",
        "gbk",
        "outlook",
        "raw",
    ),
    "thunderbird": ClientStyle(
        "thunderbird", "", "utf-8", "B", "utf-8", "8bit", "plain", "rfc2231", "utf-8", "thunderbird"
    ),
    "gb18030": ClientStyle(
        "gb18030",
        "Foxmail 7.2.23.116[cn]",
        "gb18030",
        "B",
        "gb18030",
        "base64",
        "alternative",
        "rfc2047",
        "gb18030",
        "foxmail",
    ),
}

ORGANISATION_CLIENTS = (
    "foxmail",
    "foxmail",
    "outlook",
    "outlook",
    "coremail",
    "netease",
    "legacy",
    "thunderbird",
    "gb18030",
)
PERSONAL_CLIENTS = ("qqmail", "qqmail", "netease", "coremail")


def client_style(name: str, rng: random.Random | None = None) -> ClientStyle:
    """The named profile, with small per-mail variations when `rng` is given
    (Outlook sometimes labels utf-8, Foxmail sometimes writes Q-encoded subjects)."""
    style = _STYLES[name]
    if rng is None:
        return style
    if name == "outlook" and rng.random() < 0.4:
        style = replace(style, header_charset="utf-8", body_charset="utf-8")
    if name == "foxmail" and rng.random() < 0.2:
        style = replace(style, header_encoding="Q")
    if name == "legacy" and rng.random() < 0.3:
        style = replace(style, raw_subject=True)
    return style


def _token(rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _message_id(style: ClientStyle, sender: Mailbox, moment: datetime, rng: random.Random) -> str:
    if style.name == "outlook":
        return (
            f"<{_token(rng, 12, '0123456789abcdef')}${_token(rng, 8, '0123456789abcdef')}$@{sender.domain}>"
        )
    if style.name == "qqmail":
        return f"<tencent_{_token(rng, 40, '0123456789ABCDEF')}@qq.com>"
    if style.name in ("coremail", "netease"):
        return f"<{_token(rng, 8, '0123456789abcdef')}.{rng.randint(1000, 9999)}.{int(moment.timestamp() * 1000):x}.Coremail.{sender.address}>"
    return f"<{moment:%Y%m%d%H%M%S}{rng.randint(1000000, 9999999)}@{sender.domain}>"


def _boundary(style: ClientStyle, rng: random.Random) -> str:
    if style.name in ("foxmail", "gb18030"):
        return f"----=_001_NextPart{rng.randint(10**11, 10**12 - 1)}_=----"
    if style.name in ("outlook", "legacy"):
        return f"----=_NextPart_000_{rng.randint(0, 0xFFFF):04X}_01DAD{_token(rng, 3, '0123456789ABCDEF')}.{_token(rng, 8, '0123456789ABCDEF')}"
    if style.name == "qqmail":
        return f"----=_NextPart_{_token(rng, 8, '0123456789ABCDEF')}_{_token(rng, 8, '0123456789ABCDEF')}_{_token(rng, 8, '0123456789ABCDEF')}"
    return f"----=_Part_{rng.randint(100000, 999999)}_{rng.randint(10**8, 10**9 - 1)}.{rng.randint(10**12, 10**13 - 1)}"


def _html(text: str, style: ClientStyle) -> str:
    lines = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in text.split("\n"))
    if style.name == "qqmail":
        return f'<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><div style="font-family:微软雅黑">{lines}</div>'
    return f'<html><head><meta http-equiv="content-type" content="text/html; charset={style.body_charset}"></head><body>{lines}</body></html>'


def _body_entity(text: str, style: ClientStyle, rng: random.Random) -> mime.Entity:
    if style.body_layout == "plain":
        return mime.text_entity(text, "plain", style.body_charset, style.body_transfer)
    html_part = mime.text_entity(_html(text, style), "html", style.body_charset, style.body_transfer)
    if style.body_layout == "html":
        return html_part
    plain_part = mime.text_entity(text, "plain", style.body_charset, style.body_transfer)
    return mime.multipart("alternative", [plain_part, html_part], _boundary(style, rng))


def _ip(rng: random.Random) -> str:
    # RFC 5737 documentation ranges: never a real host.
    return f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randint(2, 250)}"


def render(draft: Draft, style: ClientStyle, rng: random.Random, *, server: str = SERVER) -> bytes:
    """The message bytes `style` would produce for `draft`, as stored by `server`.

    The topmost ``Received:`` is `server`'s, stamped `draft.received_at`; below it
    the sender's own submission hop, stamped a few seconds earlier.
    """
    sender_domain = draft.sender.domain
    relay = "smtp.qq.example" if sender_domain.startswith("qq") else f"mail.{sender_domain}"
    submitted = draft.received_at - timedelta(seconds=rng.randint(1, 40))
    top = [
        mime.received(
            relay,
            _ip(rng),
            server,
            draft.received_at,
            _token(rng, 22),
            by_software="Coremail",
            envelope_for=draft.to[0].address if draft.to else "",
        ),
        mime.received(
            f"[10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}]",
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}",
            relay,
            submitted,
            _token(rng, 16),
            protocol="ESMTPA",
            zone_comment=False,
        ),
    ]
    if draft.sent_at is not None:
        top.append(mime.header("Date", mime.rfc2822_date(draft.sent_at)))
    top.append(
        mime.address_header(
            "From",
            [
                mime.mailbox(
                    draft.sender.display,
                    draft.sender.address,
                    style.header_charset,
                    style.header_encoding,
                    style.address_style,
                )
            ],
        )
    )
    top.append(
        mime.address_header(
            "To",
            [
                mime.mailbox(
                    box.display, box.address, style.header_charset, style.header_encoding, style.address_style
                )
                for box in draft.to
            ],
        )
    )
    if draft.cc:
        top.append(
            mime.address_header(
                "Cc",
                [
                    mime.mailbox(
                        box.display,
                        box.address,
                        style.header_charset,
                        style.header_encoding,
                        style.address_style,
                    )
                    for box in draft.cc
                ],
            )
        )
    top.append(
        mime.text_header(
            "Subject",
            draft.subject,
            style.header_charset,
            style.header_encoding,
            raw_8bit=style.raw_subject,
            split_mid_char=style.split_mid_char,
        )
    )
    if draft.with_message_id:
        top.append(
            mime.header("Message-ID", _message_id(style, draft.sender, draft.sent_at or submitted, rng))
        )
    if style.x_mailer:
        top.append(mime.header("X-Mailer", style.x_mailer))
    for name, value in draft.extra_headers:
        top.append(mime.text_header(name, value, "utf-8"))
    body = _body_entity(draft.body, style, rng)
    if not draft.attachments:
        return mime.build_message(top, body)
    parts = [body]
    for item in draft.attachments:
        if isinstance(item, AttachedMessage):
            parts.append(
                mime.message_entity(
                    item.raw,
                    item.filename,
                    style=style.filename_style if style.filename_style != "rfc2231" else "rfc2047",
                    charset=style.filename_charset,
                )
            )
        else:
            parts.append(
                mime.attachment_entity(
                    item.data,
                    item.filename,
                    item.content_type,
                    style=style.filename_style,
                    charset=style.filename_charset,
                )
            )
    return mime.build_message(
        top,
        mime.multipart(
            "mixed", parts, _boundary(style, rng), preamble="This is a multi-part message in MIME format."
        ),
    )


def inline_forward_text(original: Draft, style: ClientStyle, note: str) -> str:
    """The body of an inline forward: the forwarder's note, the client's header block, the original text."""
    sender = f'"{original.sender.display}"<{original.sender.address}>'
    to = ";".join(f'"{box.display}"<{box.address}>' for box in original.to)
    block = mime.forward_block(
        style.forward_style,
        sender=sender,
        sent_at=original.sent_at or original.received_at,
        to=to,
        subject=original.subject,
    )
    return note + block + original.body
