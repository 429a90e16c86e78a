"""One institution's report as attachment files: spec, file name, format.

Shared by the direct-submission and district-bureau generators so both
produce the same variety (formats, file-name habits, partner mentions).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.demo.samples import documents
from pipeline.demo.samples.catalog import COMMISSION, Institution, strip_prefix
from pipeline.demo.samples.clients import Attachment
from pipeline.demo.samples.common import NOTICE_AT, Context
from pipeline.demo.samples.wording import ReportSpec, compose_report

_FAMILIES = (
    "中山大学",
    "南方医科大学",
    "南方医院",
    "广州医科大学",
    "广州中医药大学",
    "暨南大学",
    "广东省",
    "广州市",
    "南部战区",
    "中国人民解放军",
)
TITLE_FORMS = ("plain", "plain", "plain", "guanyu-front", "guanyu-mid", "de", "no-name")


def unit_word(institution: Institution) -> str:
    """How the institution refers to itself: 我院, 我中心, 我局 ..."""
    name = institution.name
    if name.endswith("卫生健康局"):
        return "局"
    if name.endswith("中心"):
        return "中心"
    if name.endswith("所"):
        return "所"
    if name.endswith("站"):
        return "站"
    if name.endswith("家园"):
        return "单位"
    return "院"


def partner_for(ctx: Context, institution: Institution) -> str:
    """Another listed institution the report may mention (医联体, 托管, 合作单位).

    Same district first, and a near-identical name when there is one, because
    that is both realistic and the hardest case for attribution.
    """
    group = {member.row for member in ctx.catalog.same_hospital(institution)}
    others = [
        other
        for other in ctx.catalog.institutions
        if other.row not in group and other.name != COMMISSION and not other.is_bureau
    ]
    if institution.district:
        kin = [other for other in others if other.district == institution.district]
    else:
        # Hospitals of the same university or the same province/city system.
        family = next((prefix for prefix in _FAMILIES if institution.name.startswith(prefix)), "")
        kin = [other for other in others if family and other.name.startswith(family) and not other.district]
    return ctx.rng.choice(kin or [other for other in others if not other.district]).name


def written_on(ctx: Context, received_at: datetime, *, late: bool) -> datetime:
    """The date typed under the signature: the sending day, the day before, or for a
    late report often the deadline day (the report was "finished" on time)."""
    if late and ctx.rng.random() < 0.5:
        return datetime(2024, 7, 10, 9, 0, tzinfo=received_at.tzinfo)
    moment = received_at - timedelta(days=ctx.rng.choice((0, 0, 0, 1)))
    return max(moment, NOTICE_AT)


def report_spec(
    ctx: Context,
    institution: Institution,
    *,
    title_name: str,
    received_at: datetime,
    title_form: str = "",
    partner: bool | None = None,
    late: bool = False,
    author: str = "",
) -> ReportSpec:
    """The report of `institution` whose title names it as `title_name`."""
    rng = ctx.rng
    signature = institution.name if rng.random() < 0.75 else strip_prefix(institution.name)
    return compose_report(
        written_name=title_name,
        signature_name=signature,
        unit=unit_word(institution),
        rng=rng,
        written_on=written_on(ctx, received_at, late=late),
        title_form=title_form or rng.choice(TITLE_FORMS),
        # None: an occasional incidental mention; False: never (the document must name one institution only).
        partner=partner_for(ctx, institution) if partner or (partner is None and rng.random() < 0.08) else "",
        author=author or rng.choice(("Administrator", "xxk", "User", "微软用户", "lenovo")),
    )


def report_filename(name: str, extension: str, ctx: Context, *, suffix: str = "") -> str:
    """A file name as people type them; `name` is how this sender writes the institution."""
    stem = ctx.rng.choice(
        (
            f"{name}电子健康码平台应用自查情况报告",
            f"{name}自查报告",
            f"附件2：{name}电子健康码平台应用自查情况报告",
            f"电子健康码平台应用自查情况报告-{name}",
            f"{name}电子健康码应用自查情况报告",
            f"{name}关于电子健康码平台应用自查情况的报告",
        )
    )
    return f"{stem}{suffix}.{extension}"


def report_files(
    ctx: Context,
    spec: ReportSpec,
    *,
    file_name: str,
    received_at: datetime,
    formats: tuple[str, ...] = ("docx",),
    suffix: str = "",
) -> list[Attachment]:
    """Attachments carrying `spec`: docx, pdf (text), scan (image-only pdf), doc, rar."""
    saved_at = received_at - timedelta(minutes=ctx.rng.randint(5, 600))
    files: list[Attachment] = []
    for kind in formats:
        if kind == "docx":
            data = documents.docx_report(spec, saved_at=saved_at)
            files.append(
                Attachment(report_filename(file_name, "docx", ctx, suffix=suffix), data, documents.DOCX_TYPE)
            )
        elif kind == "pdf":
            stamp = suffix or ctx.rng.choice(("（盖章版）", "", "(盖章)"))
            files.append(
                Attachment(
                    report_filename(file_name, "pdf", ctx, suffix=stamp),
                    documents.pdf_report(spec),
                    documents.PDF_TYPE,
                )
            )
        elif kind == "scan":
            files.append(
                Attachment(
                    report_filename(file_name, "pdf", ctx, suffix="（扫描件）"),
                    documents.scan_pdf(ctx.rng),
                    documents.PDF_TYPE,
                )
            )
        elif kind == "doc":
            files.append(
                Attachment(
                    report_filename(file_name, "doc", ctx, suffix=suffix),
                    documents.legacy_doc(ctx.rng),
                    documents.DOC_TYPE,
                )
            )
        elif kind == "rar":
            files.append(
                Attachment(
                    report_filename(file_name, "rar", ctx, suffix=suffix),
                    documents.rar_archive(ctx.rng),
                    documents.RAR_TYPE,
                )
            )
        else:
            raise ValueError(kind)
    return files
