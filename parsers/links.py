"""Files a mail links to instead of attaching them: the "超大附件" download blocks of QQ Mail, 163/126
and Coremail-style webmail.

A large file sent from webmail is not in the MIME tree: the body carries a block such as

    从QQ邮箱发来的超大附件
    番禺区第二人民医院自查报告.pdf (86.20M, 2024年7月20日 18:00 到期)进入下载页面：http://mail.qq.com/cgi-bin/ftnExs_download?k=…

(163 writes the same as HTML: the file name is the text of an <a> whose href is
`mail.163.com/large-attachment-download/…`, the size and "… 到期" follow in a <span>; Coremail
writes "有效期至：2024-07-20").  `find_linked_files` returns what the block SAYS about each file:
its name, link, expiry and size as written.  Nothing here (or anywhere in the project) fetches the
link: the sender's server decides what is behind it, and the file is checked by a clerk.

Hostile bodies cost linear time: the scan reads at most `_SCAN_CHARS` of each body, every pattern
is a bounded repetition without nesting, and at most `_MAX_FILES` files are returned.
"""

from __future__ import annotations

import html
import re

from parsers.types import LinkedFile

_SCAN_CHARS = 200_000
_MAX_LINES = 4_000
_LINE_CHARS = 4_000
_MAX_FILES = 20
_MAX_LINKS = 500  # links looked at per body (a newsletter has dozens; a hostile body millions)
_URL_CHARS = 600  # what is kept of a link (QQ's keys run to ~300 characters)
_BLOCK_LINES = 40  # how far below a "超大附件" heading links still belong to the block

_MARKER = re.compile(r"超大附件|文件中转站|大附件")
# Download pages of the webmail large-file services (never fetched: recognised by their address).
_PROVIDERS = (
    ("qq", re.compile(r"(?:^|\.)(?:mail|exmail|wx|iwx)\.qq\.com/(?:cgi-bin/ftnExs_download|ftn/download)", re.I)),
    ("qq", re.compile(r"\.ftn\.qq\.com/ftn_handler", re.I)),
    ("163", re.compile(r"(?:^|\.)(?:mail\.163|mail\.126|mail\.yeah|dashi\.163)\.(?:com|net)/(?:large-attachment-download|html/cloud-attachment-download)", re.I)),  # noqa: E501
    ("coremail", re.compile(r"^[^/?#]{1,260}/coremail/", re.I)),  # a Coremail server's own download page
)
_URL = re.compile(r"https?://[A-Za-z0-9.\-]{1,253}(?::\d{1,5})?(?:[/?#][^\s<>\"'，。；）)\]]{0,2000})?", re.I)
_NAME = re.compile(
    r"([^\s<>:：\"/\\|?*，,。;；]{1,120}\."
    r"(?:docx|doc|wps|pdf|ofd|zip|rar|7z|xlsx|xls|et|rtf|txt|jpe?g|png|tiff?|heic))(?![A-Za-z0-9])",
    re.I,
)
_DATE = r"\d{4}\s{0,2}[年\-/.]\s{0,2}\d{1,2}\s{0,2}[月\-/.]\s{0,2}\d{1,2}\s{0,2}日?(?:\s{0,3}\d{1,2}[:：]\d{2})?"
_EXPIRY = re.compile(
    rf"(?:到期时间|到期日期|有效期至|有效期到|有效期|过期时间|截止时间)\s{{0,3}}[:：]?\s{{0,3}}({_DATE})"
    rf"|({_DATE})\s{{0,3}}(?:到期|过期|前有效)"
)
_SIZE = re.compile(r"[（(]\s{0,2}(\d{1,7}(?:\.\d{1,3})?\s{0,2}(?:[KMGT]i?B?|字节|bytes?))", re.I)
_TAG = re.compile(r"\s{0,3}(/?)\s{0,3}([A-Za-z][A-Za-z0-9]{0,9})")
_TAG_CHARS = 4_000
_HREF = re.compile(r"""\bhref\s{0,3}=\s{0,3}(?:"([^"]{0,2000})"|'([^']{0,2000})'|([^\s"'>]{1,2000}))""", re.I)
_BLOCK_TAGS = frozenset({"p", "div", "br", "tr", "li", "table", "h1", "h2", "h3", "h4", "h5", "h6", "td", "ul", "ol"})


def find_linked_files(text_body: str, html_body: str, *, path_prefix: str = "") -> tuple[LinkedFile, ...]:
    """The linked files the mail's bodies describe, in order of appearance, deduplicated by link.

    A link counts when its address is a known large-file service (QQ/163/126/Coremail download
    pages), or when it stands under a "超大附件"/"文件中转站" heading together with a file name.
    Paths are "link1", "link2" … (prefixed like attachment paths inside an attached message).
    """
    found: dict[str, dict[str, str]] = {}
    for lines in (_html_lines(html_body) if html_body else [], _text_lines(text_body)):
        _scan(lines, found)
        if len(found) >= _MAX_FILES:
            break
    files = []
    for index, (url, info) in enumerate(list(found.items())[:_MAX_FILES], 1):
        files.append(LinkedFile(path=f"{path_prefix}link{index}", filename=info["filename"], url=url,
                                expires=info["expires"], size=info["size"], provider=info["provider"]))  # fmt: skip
    return tuple(files)


def _scan(lines: list[str], found: dict[str, dict[str, str]]) -> None:
    block_end = -1
    # Lines holding no link of their own: only those may lend a name, size or expiry to a link
    # on a neighbouring line (a line with a link describes that link).
    bare = ["" if _URL.search(line) else line for line in lines]
    facts: dict[tuple[int, bool], tuple[str, str, str]] = {}  # (line, own?) -> (name, expiry, size), read once

    def read(j: int, text: str, *, own: bool = False) -> tuple[str, str, str]:
        if (j, own) not in facts:
            facts[j, own] = (_last_name(text), _first(_EXPIRY, text), _first(_SIZE, text))
        return facts[j, own]

    links = 0
    for i, line in enumerate(lines):
        if _MARKER.search(line):
            block_end = i + _BLOCK_LINES
        for match in _URL.finditer(line):
            links += 1
            if links > _MAX_LINKS:
                return
            url = match.group(0).rstrip(".,;:!?")[:_URL_CHARS]
            provider = _provider(url)
            if not provider and i > block_end:
                continue
            before = [read(j, bare[j]) for j in range(i - 1, max(-1, i - 3), -1)]  # nearest first
            around = before + [read(j, bare[j]) for j in range(i + 1, min(len(lines), i + 3))]
            here = read(i, _URL.sub(" ", line), own=True)
            name = here[0] or next((t[0] for t in before if t[0]), "")
            if not name and not provider:
                continue  # a link under the heading that names no file ("推荐客户端极速下载")
            expires = here[1] or next((t[1] for t in around if t[1]), "")
            size = here[2] or next((t[2] for t in around if t[2]), "")
            entry = found.get(url)
            if entry is None:
                if len(found) >= _MAX_FILES:
                    return
                found[url] = {"filename": name, "expires": expires, "size": size, "provider": provider or "other"}
                continue
            for key, value in (("filename", name), ("expires", expires), ("size", size)):
                entry[key] = entry[key] or value


def _provider(url: str) -> str:
    tail = url.split("://", 1)[-1]
    return next((name for name, pattern in _PROVIDERS if pattern.search(tail)), "")


def _last_name(text: str) -> str:
    names = _NAME.findall(text)
    return names[-1].strip() if names else ""


def _first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    if match is None:
        return ""
    return " ".join(next(g for g in match.groups() if g).split())


def _text_lines(text: str) -> list[str]:
    lines = text[:_SCAN_CHARS].splitlines()[:_MAX_LINES]
    return [line[:_LINE_CHARS].strip() for line in lines]


def _html_lines(markup: str) -> list[str]:
    """HTML as text lines, each link's address written after its text.

    A hand-rolled tag walk rather than html.parser: every character is looked at a bounded number
    of times, so an unclosed quote or a million open tags cost linear time.
    """
    markup = markup[:_SCAN_CHARS]
    out: list[str] = []
    hrefs: list[str] = []
    skip = ""
    pos = 0
    while pos < len(markup):
        lt = markup.find("<", pos)
        if not skip:
            out.append(html.unescape(markup[pos : lt if lt >= 0 else len(markup)]))
        if lt < 0:
            break
        gt = markup.find(">", lt)
        if gt < 0:
            break  # an unclosed tag ends what can be read
        tag = _TAG.match(markup, lt + 1, min(gt, lt + 1 + _TAG_CHARS))
        pos = gt + 1
        if tag is None:
            continue
        closing, name = tag.group(1) == "/", tag.group(2).lower()
        if skip:
            skip = "" if closing and name == skip else skip
        elif name in ("script", "style") and not closing:
            skip = name
        elif name == "a" and not closing:
            found = _HREF.search(markup, lt, min(gt, lt + _TAG_CHARS))
            hrefs.append(html.unescape(next((g for g in found.groups() if g), "")) if found else "")
        elif name == "a" and hrefs:
            href = hrefs.pop()
            if href.lower().startswith(("http://", "https://")):
                out.append(f" {href} ")
        elif name in _BLOCK_TAGS:
            out.append("\n")
    return _text_lines("".join(out))
