"""Outlook .msg files and TNEF (winmail.dat) built byte by byte for the tests.

No library here writes .msg (extract-msg and olefile only read), so `cfb` is a compact writer of
the Compound File Binary format [MS-CFB] version 3: 512-byte sectors, a FAT, small streams in the
mini stream (64-byte mini sectors, MiniFAT), and a directory whose children hang off each
storage as a right-leaning chain (a valid, unbalanced red-black tree: all nodes black).
`msg_bytes` lays out an [MS-OXMSG] message in it: property streams `__substg1.0_PPPPTTTT`,
the `__properties_version1.0` streams, one recipient storage per address and one attachment
storage per file (by value, or an embedded message).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SECTOR = 512
MINI = 64
CUTOFF = 4096
ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


@dataclass
class _Node:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: dict[str, _Node] = field(default_factory=dict)
    sid: int = 0
    start: int = ENDOFCHAIN
    size: int = 0


def _cfb_key(name: str) -> tuple[int, str]:
    return (len(name), name.upper())


def cfb(streams: dict[str, bytes]) -> bytes:
    """A compound file holding `streams` ("storage/sub/stream" paths -> bytes)."""
    root = _Node("Root Entry", 5)
    for path, data in streams.items():
        node = root
        *storages, leaf = path.split("/")
        for name in storages:
            node = node.children.setdefault(name, _Node(name, 1))
        node.children[leaf] = _Node(leaf, 2, data)
    order: list[_Node] = []
    queue = [root]
    while queue:
        node = queue.pop(0)
        node.sid = len(order)
        order.append(node)
        queue.extend(sorted(node.children.values(), key=lambda n: _cfb_key(n.name)))

    sectors: list[bytes] = []
    fat: list[int] = []

    def alloc(data: bytes) -> int:
        if not data:
            return ENDOFCHAIN
        first = len(sectors)
        chunks = [data[i : i + SECTOR].ljust(SECTOR, b"\0") for i in range(0, len(data), SECTOR)]
        for i, chunk in enumerate(chunks):
            sectors.append(chunk)
            fat.append(first + i + 1 if i + 1 < len(chunks) else ENDOFCHAIN)
        return first

    mini = bytearray()
    minifat: list[int] = []
    for node in order:
        if node.kind != 2:
            continue
        node.size = len(node.data)
        if node.size >= CUTOFF:
            node.start = alloc(node.data)
        elif node.size:
            node.start = len(mini) // MINI
            count = -(-node.size // MINI)
            minifat.extend(node.start + i + 1 if i + 1 < count else ENDOFCHAIN for i in range(count))
            mini += node.data.ljust(count * MINI, b"\0")
    root.start, root.size = alloc(bytes(mini)), len(mini)
    minifat_bytes = struct.pack(f"<{len(minifat)}I", *minifat) if minifat else b""
    minifat_start = alloc(minifat_bytes.ljust(-(-len(minifat_bytes) // SECTOR) * SECTOR, b"\xff"))
    directory = b"".join(_entry(node) for node in order)
    directory += _empty_entry() * ((-len(order)) % 4)
    dir_start = alloc(directory)
    n_fat = 1
    while (len(sectors) + n_fat) * 4 > n_fat * SECTOR:
        n_fat += 1
    fat_start = len(sectors)
    fat.extend([FATSECT] * n_fat)
    fat.extend([FREESECT] * (n_fat * SECTOR // 4 - len(fat)))
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    sectors.extend(fat_bytes[i : i + SECTOR] for i in range(0, len(fat_bytes), SECTOR))
    difat = [fat_start + i for i in range(n_fat)] + [FREESECT] * (109 - n_fat)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, n_fat, dir_start, 0, CUTOFF, minifat_start if minifat else ENDOFCHAIN,
                      len(minifat_bytes) // SECTOR + (1 if len(minifat_bytes) % SECTOR else 0), ENDOFCHAIN, 0)
        + struct.pack("<109I", *difat)
    )  # fmt: skip
    return header + b"".join(sectors)


def _entry(node: _Node) -> bytes:
    name = (node.name + "\0").encode("utf-16-le")
    kids = sorted(node.children.values(), key=lambda n: _cfb_key(n.name))
    child = kids[0].sid if kids else NOSTREAM
    # Siblings: a chain to the right, so every storage's children are in BST order.
    for left, right in zip(kids, kids[1:], strict=False):
        left.right = right.sid  # type: ignore[attr-defined]
    right_sid = getattr(node, "right", NOSTREAM)
    return (
        name.ljust(64, b"\0") + struct.pack("<HBB", len(name), node.kind, 1)
        + struct.pack("<III", NOSTREAM, right_sid, child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
        + struct.pack("<IQ", node.start if node.kind != 1 else 0, node.size)
    )  # fmt: skip


def _empty_entry() -> bytes:
    return b"\0" * 64 + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", NOSTREAM, NOSTREAM, NOSTREAM) + b"\0" * 52


# -- [MS-OXMSG] ---------------------------------------------------------------------------------

PT_UNICODE, PT_BINARY, PT_LONG = 0x001F, 0x0102, 0x0003


def _string(prop: int, value: str) -> tuple[str, bytes]:
    return f"__substg1.0_{prop:04X}{PT_UNICODE:04X}", value.encode("utf-16-le")


def _fixed(entries: list[tuple[int, int, int]]) -> bytes:
    """16-byte fixed-size property entries: (property id, type, 32-bit value)."""
    return b"".join(struct.pack("<HHIIi", ptype, prop, 6, value, 0) for prop, ptype, value in entries)


@dataclass
class MsgAttachment:
    filename: str
    data: bytes = b""
    mime_type: str = ""
    embedded: dict[str, bytes] | None = None  # the streams of an attached message (attach method 5)


def msg_streams(*, subject: str, sender_name: str, sender_address: str, to: list[str], body: str,
                headers: str = "", attachments: list[MsgAttachment] | None = None,
                html: str = "", embedded: bool = False) -> dict[str, bytes]:  # fmt: skip
    """The streams of one Outlook message (to nest as an attachment, or to write with `cfb`)."""
    attachments = attachments or []
    streams = dict(
        [
            _string(0x001A, "IPM.Note"),
            _string(0x0037, subject),
            _string(0x0C1A, sender_name),
            _string(0x0C1F, sender_address),
            _string(0x5D01, sender_address),
            _string(0x0C1E, "SMTP"),
            _string(0x1000, body),
            _string(0x0E04, "; ".join(to)),
        ]
    )
    if headers:
        streams.update([_string(0x007D, headers)])
    if html:
        streams[f"__substg1.0_1013{PT_BINARY:04X}"] = html.encode("utf-8")
    if not embedded:  # the named-property map (empty: no named properties used)
        for kind in ("0002", "0003", "0004"):
            streams[f"__nameid_version1.0/__substg1.0_{kind}0102"] = b""
    reserved = b"\0" * 8
    counts = struct.pack("<IIII", len(to), len(attachments), len(to), len(attachments))
    streams["__properties_version1.0"] = (reserved if embedded else reserved + counts + reserved) + _fixed(
        [(0x0E07, PT_LONG, 1)]  # PR_MESSAGE_FLAGS: read
    )
    for i, address in enumerate(to):
        prefix = f"__recip_version1.0_#{i:08X}/"
        for name, value in (_string(0x3001, address), _string(0x3003, address), _string(0x39FE, address),
                            _string(0x3002, "SMTP")):  # fmt: skip
            streams[prefix + name] = value
        streams[prefix + "__properties_version1.0"] = reserved + _fixed([(0x0C15, PT_LONG, 1)])  # MAPI_TO
    for i, att in enumerate(attachments):
        prefix = f"__attach_version1.0_#{i:08X}/"
        method = 5 if att.embedded is not None else 1
        for name, value in (_string(0x3707, att.filename), _string(0x3704, att.filename[-12:]),
                            _string(0x370E, att.mime_type or "application/octet-stream")):  # fmt: skip
            streams[prefix + name] = value
        if att.embedded is not None:
            for sub, value in att.embedded.items():
                streams[f"{prefix}__substg1.0_3701000D/{sub}"] = value
        else:
            streams[f"{prefix}__substg1.0_3701{PT_BINARY:04X}"] = att.data
        streams[prefix + "__properties_version1.0"] = reserved + _fixed(
            [(0x3705, PT_LONG, method), (0x0E21, PT_LONG, i), (0x0E20, PT_LONG, len(att.data))]
        )
    return streams


def msg_bytes(**kwargs) -> bytes:
    """A complete .msg file (see msg_streams for the arguments)."""
    return cfb(msg_streams(**kwargs))


# -- TNEF (winmail.dat) ---------------------------------------------------------------------------

_TNEF_SIGNATURE = 0x223E9F78
_LVL_MESSAGE, _LVL_ATTACHMENT = 1, 2


def _tnef_attr(level: int, attr_id: int, attr_type: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, (attr_type << 16) | attr_id, len(data)) + data + struct.pack("<H", checksum)


def tnef_bytes(files: list[tuple[str, bytes]], *, body: str = "") -> bytes:
    """A winmail.dat with `files` as attachments (attAttachRenddata, attAttachTitle, attAttachData)."""
    out = struct.pack("<IH", _TNEF_SIGNATURE, 0x0001)
    out += _tnef_attr(_LVL_MESSAGE, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _tnef_attr(_LVL_MESSAGE, 0x9007, 0x0006, struct.pack("<II", 936, 0))  # attOemCodepage
    if body:
        out += _tnef_attr(_LVL_MESSAGE, 0x800C, 0x0002, body.encode("gbk") + b"\0")  # attBody
    for name, data in files:
        out += _tnef_attr(_LVL_ATTACHMENT, 0x9002, 0x0002, b"\0" * 14)  # attAttachRenddata
        out += _tnef_attr(_LVL_ATTACHMENT, 0x8010, 0x0001, name.encode("gbk") + b"\0")  # attAttachTitle
        out += _tnef_attr(_LVL_ATTACHMENT, 0x800F, 0x0006, data)  # attAttachData
    return out
