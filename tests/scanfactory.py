"""Scans and photos of Chinese report pages for the OCR tests, drawn with a real CJK font.

Pages are rendered with PIL and Noto CJK (Debian `fonts-noto-cjk`, installed by scripts/setup),
rotated slightly and JPEG-compressed like a desk scanner's output, then wrapped as PNG/JPEG/TIFF,
as an image-only PDF (PIL's PDF writer: one JPEG per page, no text layer) or in a .docx.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


def font_path() -> str | None:
    return next((p for p in FONT_CANDIDATES if Path(p).exists()), None)


def page(lines: list[str], *, size: tuple[int, int] = (1240, 1754), font_px: int = 40, rotate: float = 1.2,
         stamp: str = "") -> Image.Image:  # fmt: skip
    """An A4 page at 150 dpi with `lines` from the top, optionally a round red stamp with ring text."""
    path = font_path()
    assert path is not None, "fonts-noto-cjk is not installed (scripts/setup installs it)"
    font = ImageFont.truetype(path, font_px)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    y = 150
    for line in lines:
        draw.text((120, y), line, font=font, fill="black")
        y += int(font_px * 2.6)
    if stamp:
        _stamp(img, stamp, (size[0] - 420, y - 200), 170)
    return img.rotate(rotate, fillcolor="white", resample=Image.BICUBIC) if rotate else img


def _stamp(img: Image.Image, text: str, centre: tuple[int, int], radius: int) -> None:
    """A 公章-like red ring with `text` set around its upper arc and a star in the middle, printed over
    the page like ink (multiplied: black text under the seal stays black)."""
    page, img = img, Image.new("RGB", img.size, "white")
    cx, cy = centre
    draw = ImageDraw.Draw(img)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=(220, 30, 30), width=8)
    font = ImageFont.truetype(font_path() or "", 34)
    n = len(text)
    for i, ch in enumerate(text):
        angle = math.radians(-150 + 120 * i / max(n - 1, 1))
        x = cx + (radius - 40) * math.cos(angle)
        y = cy + (radius - 40) * math.sin(angle)
        glyph = Image.new("RGBA", (44, 44), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((4, 2), ch, font=font, fill=(220, 30, 30, 255))
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.BICUBIC)
        img.paste(glyph, (int(x - 22), int(y - 22)), glyph)
    draw.regular_polygon((cx, cy, 40), 5, fill=(220, 30, 30))
    page.paste(ImageChops.multiply(page, img))


def jpeg(img: Image.Image, quality: int = 55) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def tiff(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("L").save(buf, "TIFF", compression="tiff_deflate")
    return buf.getvalue()


def scanned_pdf(pages: list[Image.Image], quality: int = 55) -> bytes:
    """An image-only PDF, one JPEG per page (as scanners write them)."""
    rgb = [Image.open(io.BytesIO(jpeg(p, quality))) for p in pages]
    buf = io.BytesIO()
    rgb[0].save(buf, "PDF", resolution=150, save_all=True, append_images=rgb[1:])
    return buf.getvalue()


def blank_pdf(pages: int, size: tuple[int, int] = (124, 175)) -> bytes:
    """A long image-only PDF of near-empty small pages (the 500-page scan)."""
    img = Image.new("L", size, 255)
    buf = io.BytesIO()
    img.save(buf, "PDF", resolution=15, save_all=True, append_images=[img] * (pages - 1))
    return buf.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: refused from the header alone."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
