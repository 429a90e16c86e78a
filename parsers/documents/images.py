"""Images (photos and scans of reports: jpeg, png, tiff, gif, heic via pillow-heif) read by OCR.

The size is judged from the header before any pixel is decoded: over `limits.max_image_pixels`
the image is refused (IMAGE_TOO_LARGE).  Images under `limits.min_ocr_pixels` (logos, signature
pictures, icons) are not worth OCR time and stay UNREADABLE IMAGE_NO_TEXT.  A multi-page TIFF
is read like a scanned PDF: pages in `ocr.page_order`.
"""

from __future__ import annotations

from parsers.documents import ocr
from parsers.documents.base import Context, Outcome, unreadable
from parsers.types import DocumentText, PartKind, ProblemCode


def read_image(ctx: Context) -> Outcome:
    """Kind DOCUMENT with OCR paragraphs (where="ocr-image" or "ocr-page-N"), else UNREADABLE."""
    try:
        first = ocr.open_image(ctx.data, ctx.limits)
    except ocr.ImageRefused as exc:
        return unreadable(exc.problem)
    if first.width * first.height < ctx.limits.min_ocr_pixels:
        return unreadable(ProblemCode.IMAGE_NO_TEXT, f"{first.width} x {first.height}: too small to OCR")
    if not (ctx.limits.defer_ocr or ocr.available()):  # after the size checks: refusing needs no OCR libraries
        return unreadable(ProblemCode.IMAGE_NO_TEXT, f"{ctx.content_type}: OCR not installed")
    frames = _frame_count(ctx.data)

    def render(number: int):
        if number == 1:
            return first
        return _frame(ctx, number)

    where = (lambda n: "ocr-image") if frames == 1 else (lambda n: f"ocr-page-{n}")
    result = ocr.ocr_pages(frames, render, ctx.limits, ctx.ocr, where=where)
    if not result.paragraphs:
        warnings = [w for w in result.warnings if w.code is not ProblemCode.OCR_USED]
        return unreadable(ProblemCode.IMAGE_NO_TEXT, ctx.content_type, warnings)
    return Outcome(PartKind.DOCUMENT, document=DocumentText(paragraphs=tuple(result.paragraphs)),
                   warnings=result.warnings)  # fmt: skip


def ocr_embedded(ctx: Context, images: list[tuple[str, bytes]]) -> ocr.OcrResult | None:
    """OCR of the pictures inside a document that has no text of its own (a scan pasted in Word).

    Each picture is a "page" (where="ocr-image-N"), checked against max_image_pixels and
    min_ocr_pixels like an attached image.  None when OCR is not installed.
    """
    if not images or not (ctx.limits.defer_ocr or ocr.available()):
        return None

    def render(number: int):
        name, data = images[number - 1]
        img = ocr.open_image(data, ctx.limits)
        if img.width * img.height < ctx.limits.min_ocr_pixels:
            raise ocr.ImageRefused(ocr.Problem(ProblemCode.IMAGE_NO_TEXT, f"{name}: too small to OCR"))
        return img

    return ocr.ocr_pages(len(images), render, ctx.limits, ctx.ocr, where=lambda n: f"ocr-image-{n}")


def _frame_count(data: bytes) -> int:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return max(1, min(int(getattr(img, "n_frames", 1)), 10_000))
    except Exception:  # the first frame already decoded: treat the rest as absent
        return 1


def _frame(ctx: Context, number: int):
    """Frame `number` (1-based) of a multi-page TIFF, checked like the first."""
    import io

    from PIL import Image

    try:
        img = Image.open(io.BytesIO(ctx.data))
        img.seek(number - 1)
        width, height = img.size
    except Exception as exc:
        raise ocr.ImageRefused(ocr.Problem(ProblemCode.CORRUPT, f"tiff page {number}")) from exc
    if width * height > ctx.limits.max_image_pixels:
        raise ocr.ImageRefused(ocr.Problem(ProblemCode.IMAGE_TOO_LARGE, f"tiff page {number}: {width} x {height}"))
    try:
        img.load()
        return img.convert("RGB")
    except Exception as exc:
        raise ocr.ImageRefused(ocr.Problem(ProblemCode.CORRUPT, f"tiff page {number}")) from exc
