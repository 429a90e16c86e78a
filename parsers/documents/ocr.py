"""Chinese OCR of scanned pages and photos, offline, with RapidOCR (PP-OCRv4 models in the wheel).

Pure: bytes or images in, paragraphs out; no disk, no network.  The engine is created once per
process, on first use (start-up ~0.3 s, ~300 MB), so a parse that needs no OCR pays nothing.

Page order and budgets (see `ocr_pages`): the first page, then the last (the stamp and 报送单位
are there), then the rest in order, at most `limits.max_ocr_pages` pages and
`limits.ocr_timeout_s` seconds per document, stopping early once `enough_text` says the pages
read so far already hold a report title and a unit line.  Paragraphs are tagged
`where="ocr-page-N"` (PDF pages) or `"ocr-image"` so evidence can say the text came from OCR.
Every text box the detector finds is kept, stamp text included (the ring of a round stamp
comes back as short arcs, one paragraph per box).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from parsers.documents.base import OcrBudget
from parsers.types import Paragraph, ParseLimits, Problem, ProblemCode

_MIN_TEXT = 20  # fewer characters than this from all pages OCR'd: noise, not the document's text
_MIN_SCORE = 0.5  # RapidOCR's own default; lower keeps noise from photos of paper texture
_DET_SIDE = 960  # longest side of the image the text detector sees
_MAX_SIDE = 2400  # pixels: larger images are scaled down first (A4 at 200 dpi is 1654 x 2339)

_engine = None
_engine_threads = -1
_engine_lock = threading.Lock()


def engine(threads: int = 0):
    """The process's RapidOCR engine, created on first call.  Raises ImportError when not installed.

    `threads`: onnxruntime threads per model, 0 for its default (one per core).  One thread is the
    cheapest per page when other parser processes use the other cores (`[limits] ocr_threads`);
    an engine made with another count is replaced.
    """
    global _engine, _engine_threads
    with _engine_lock:
        if _engine is None or _engine_threads != threads:
            try:
                _engine, _engine_threads = _new_engine(threads), threads
            except Exception:
                if _engine is None:
                    raise
                # The one built earlier stands: a parse sandbox's child builds it before it drops its
                # privileges, and may no longer read the models to build another.
        return _engine


def _new_engine(threads: int):  # noqa: ANN202 - a RapidOCR
    from rapidocr_onnxruntime import RapidOCR

    threading_options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1} if threads > 0 else {}
    # Text detection on a copy scaled to at most 960 px (its default scales up to at least
    # 736 px on the short side: a whole A4 page at 150 dpi).  Recognition still reads the
    # full-resolution crops, so names read the same (bench.ocr_bench: 99.1% either way)
    # while detection, most of the time on a page, costs about a third.
    return RapidOCR(det_limit_side_len=_DET_SIDE, det_limit_type="max", **threading_options)


def available() -> bool:
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class ImageRefused(Exception):
    """An image is over max_image_pixels or cannot be decoded; `problem` says which."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def open_image(data: bytes, limits: ParseLimits):
    """A decoded RGB PIL image, refused from its header alone when over `limits.max_image_pixels`.

    PIL's `open` reads only the header; the pixels are decoded by `load`, after the check.
    """
    from PIL import Image, UnidentifiedImageError

    if data[4:8] == b"ftyp":
        _heif_opener()
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
    except Image.DecompressionBombError as exc:  # PIL's own header check (over 2 x 89 megapixels)
        raise ImageRefused(Problem(ProblemCode.IMAGE_TOO_LARGE, str(exc)[:120])) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageRefused(Problem(ProblemCode.CORRUPT, f"image: {type(exc).__name__}")) from exc
    if width * height > limits.max_image_pixels:
        raise ImageRefused(
            Problem(ProblemCode.IMAGE_TOO_LARGE, f"{width} x {height} pixels, over {limits.max_image_pixels}")
        )
    try:
        with _pixel_cap(limits.max_image_pixels):
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageRefused(Problem(ProblemCode.CORRUPT, f"image: {type(exc).__name__}")) from exc


def _heif_opener() -> None:
    """Teach PIL to open HEIC/HEIF (iPhone photos) when pillow-heif is installed; once per process."""
    global _heif_registered
    if not _heif_registered:
        _heif_registered = True
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:
            pass


_heif_registered = False


class _pixel_cap:
    """PIL's own bomb check, set to our limit for the duration (multi-frame TIFFs, odd headers)."""

    def __init__(self, pixels: int) -> None:
        self.pixels = pixels

    def __enter__(self):
        from PIL import Image

        self.saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = self.pixels
        return self

    def __exit__(self, *exc) -> None:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = self.saved


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    x: float
    y: float
    height: float
    stamp: bool = False  # read from the ring of a round red seal (公章)


def recognise(img, threads: int = 0) -> list[Line]:
    """Text lines of a PIL image, top to bottom then left to right, then the ring text of its seals.

    Round red seals are found by colour and shape; they are whitened out of the page before the
    text is read (a seal over the 报送单位 line no longer breaks it), and each seal's ring is
    unwrapped into a straight strip (polar transform) and read on its own.  `threads`: see `engine`.
    """
    import numpy as np

    scale = min(1.0, _MAX_SIDE / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    rgb = np.asarray(img.convert("RGB"))
    page, rings = _split_seals(rgb)
    lines = _read(page[:, :, ::-1], threads)  # RapidOCR expects OpenCV's BGR order
    for ring in rings:
        lines += [Line(ln.text, ln.x, ln.y, ln.height, stamp=True) for ln in _read(ring, threads)]
    return lines


def _read(array, threads: int) -> list[Line]:  # noqa: ANN001 - a numpy image
    result, _ = engine(threads)(array)
    lines: list[Line] = []
    for box, text, score in result or ():
        text = str(text).strip()
        if not text or float(score) < _MIN_SCORE:
            continue
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        lines.append(Line(text, min(xs), min(ys), max(ys) - min(ys)))
    return _reading_order(lines)


def _reading_order(lines: list[Line]) -> list[Line]:
    """Rows by vertical position (boxes within half a line height share a row), each left to right."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: ln.y):
        if rows and abs(line.y - rows[-1][0].y) < max(rows[-1][0].height, line.height) / 2:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [ln for row in rows for ln in sorted(row, key=lambda ln: ln.x)]


def _split_seals(rgb):  # noqa: ANN001, ANN202 - numpy arrays
    """(the page with its seals' red ink whitened, one unwrapped ring strip per seal; at most 3).

    A seal is a connected patch of red ink about as wide as high, at least 80 px across and
    mostly empty inside (a ring and its text, not a solid red block or a line of red title text).
    """
    import cv2
    import numpy as np

    r, g, b = (rgb[:, :, i].astype(np.int16) for i in range(3))
    red = (r > 140) & (r - g > 60) & (r - b > 60)
    if red.mean() < 0.0005:
        return rgb, []
    mask = cv2.dilate(red.astype(np.uint8), np.ones((9, 9), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    page = rgb.copy()
    rings = []
    for x, y, w, h, _area in sorted(stats[1:], key=lambda s: -s[4])[:3]:
        if min(w, h) < 80 or not 0.75 < w / h < 1.33:
            continue
        ink = red[y : y + h, x : x + w]
        if ink.mean() > 0.45:
            continue
        page[y : y + h, x : x + w][ink] = 255
        radius = max(w, h) / 2
        # Grey levels from how red each pixel is (not the hard mask): JPEG-blurred strokes stay whole.
        crop = slice(y, y + h), slice(x, x + w)
        redness = np.clip((r[crop] - np.maximum(g[crop], b[crop])) * 2, 0, 255)
        plain = (255 - redness).astype(np.uint8)
        polar = cv2.warpPolar(plain, (int(radius), int(2 * np.pi * radius)), (w / 2, h / 2), radius,
                              cv2.WARP_POLAR_LINEAR + cv2.INTER_LINEAR)  # fmt: skip
        # Rows are angles from 3 o'clock clockwise; start at 6 o'clock so that ring text running
        # clockwise from the lower left is one piece, then turn it so the outer edge is up.
        polar = np.roll(polar, -polar.shape[0] // 4, axis=0)
        strip = np.ascontiguousarray(np.rot90(polar, 1)[: polar.shape[1] // 2, :])
        rings.append(cv2.cvtColor(strip, cv2.COLOR_GRAY2BGR))
    return page, rings


def paragraphs_of(lines: Iterable[Line], where: str) -> list[Paragraph]:
    """Paragraphs tagged `where`; seal ring text tagged `{where}-stamp`."""
    return [Paragraph(line.text, where=f"{where}-stamp" if line.stamp else where) for line in lines]


def page_order(count: int, max_pages: int) -> list[int]:
    """1-based page numbers to OCR: first, last, then the rest in order, at most `max_pages`."""
    if count <= 0 or max_pages <= 0:
        return []
    order = [1] + ([count] if count > 1 else []) + list(range(2, count))
    return order[:max_pages]


_TITLE = re.compile(r"(自查|整改|工作|情况|总结)[^\n]{0,12}报告|报告\s*$|情况报告", re.MULTILINE)
_UNIT_LINE = re.compile(
    r"(报送|填报|提交|上报)单位|单位（?\(?盖章|（盖章）|\(盖章\)|"
    r"^\s*\S{2,30}(医院|卫生院|卫生服务中心|疾病预防控制中心|保健院|委员会|卫生健康局|中心|研究所)\s*$",
    re.MULTILINE,
)


def enough_text(text: str) -> bool:
    """True when `text` already holds a report title and a unit line: further pages can wait.

    A pure function of the text, so the rule can be tested and changed on its own.
    """
    return bool(_TITLE.search(text)) and bool(_UNIT_LINE.search(text))


@dataclass(slots=True)
class OcrResult:
    paragraphs: list[Paragraph]
    warnings: list[Problem]
    pages_read: int


def deferred(count: int) -> OcrResult:
    """No OCR here (`limits.defer_ocr`): the part says so and the message is parsed again on the OCR lane.
    Callers check `defer_ocr` before loading anything OCR needs: a parser process of the text lane has
    no OCR libraries (pipeline.inbound.sandbox)."""
    return OcrResult([], [Problem(ProblemCode.OCR_DEFERRED, f"{count} page(s) left for the OCR lane")], 0)


def ocr_pages(
    count: int,
    render: Callable[[int], object],
    limits: ParseLimits,
    budget: OcrBudget | None = None,
    *,
    where: Callable[[int], str] = lambda n: f"ocr-page-{n}",
    clock: Callable[[], float] = time.monotonic,
) -> OcrResult:
    """OCR up to `limits.max_ocr_pages` of `count` pages in `page_order`, within `limits.ocr_timeout_s`
    and the message's `budget` (seconds shared by its documents; what is used is deducted).

    `render(n)` returns page n as a PIL image, or raises ImageRefused (the page is skipped and
    the reason kept).  Paragraphs come back in page order whatever order pages were read in.
    """
    if limits.defer_ocr:
        return deferred(count)
    start = clock()
    seconds = limits.ocr_timeout_s if budget is None else min(limits.ocr_timeout_s, budget.seconds_left)
    try:
        return _ocr_pages(count, render, limits, seconds, where, clock, start)
    finally:
        if budget is not None:
            budget.seconds_left -= clock() - start


def _ocr_pages(count, render, limits, seconds, where, clock, start) -> OcrResult:  # noqa: ANN001
    by_page: dict[int, list[Paragraph]] = {}
    warnings: list[Problem] = []
    order = page_order(count, limits.max_ocr_pages)
    read = 0
    stopped = ""
    for index, number in enumerate(order):
        if clock() - start >= seconds:
            stopped = f"time budget of {max(seconds, 0):.0f} s spent"
            break
        try:
            img = render(number)
        except ImageRefused as exc:
            warnings.append(exc.problem)
            continue
        try:
            lines = recognise(img, limits.ocr_threads)
        except Exception as exc:  # MemoryError under the sandbox cap, an engine error: keep what was read
            warnings.append(Problem(ProblemCode.READER_FAILED, f"OCR failed on page {number}: {type(exc).__name__}"))
            break
        finally:
            del img
        by_page[number] = paragraphs_of(lines, where(number))
        read += 1
        if index >= 1 or count == 1:
            so_far = "\n".join(p.text for n in sorted(by_page) for p in by_page[n])
            if enough_text(so_far):
                break
    if read < count:
        if not stopped:
            stopped = "title and unit found" if _found_enough(by_page) else f"page budget of {limits.max_ocr_pages}"
        warnings.append(Problem(ProblemCode.OCR_PAGES_CUT, f"{read} of {count} pages read by OCR ({stopped})"))
    paragraphs = [p for n in sorted(by_page) for p in by_page[n]]
    found = sum(len(p.text) for p in paragraphs)
    if found < _MIN_TEXT:  # a few glyphs read from a seal, a logo or grey bars: not a text
        if found:
            warnings.append(Problem(ProblemCode.PARTIAL, f"OCR found only {found} character(s): ignored"))
        paragraphs = []
    if paragraphs:
        warnings.append(Problem(ProblemCode.OCR_USED, f"{read} page(s) read by OCR"))
    return OcrResult(paragraphs, warnings, read)


def _found_enough(by_page: dict[int, list[Paragraph]]) -> bool:
    return enough_text("\n".join(p.text for n in sorted(by_page) for p in by_page[n]))
