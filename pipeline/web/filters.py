"""Template helpers: local times, Chinese labels, percentages, the arrivals chart's geometry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment

from pipeline.config import Config
from pipeline.labels_zh import SOURCE, label
from pipeline.vocab import (
    Action,
    Channel,
    DeliveryOutcome,
    DeliveryState,
    MailKind,
    MessageKind,
    ReceivedBasis,
    Status,
)


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG polyline of cumulative arrivals with the deadline as a vertical line (viewBox 0 0 W H)."""

    width: int
    height: int
    points: str
    deadline_x: float | None
    total: int
    expected: int
    start_label: str
    end_label: str
    deadline_label: str


def arrivals_chart(arrivals: list[datetime], deadline: datetime, as_of: datetime, expected: int,
                   tz, width: int = 640, height: int = 220) -> Chart:  # noqa: ANN001
    pad = 24
    start = min([*arrivals[:1], deadline, as_of])
    end = max(as_of, deadline)
    span = max((end - start).total_seconds(), 1.0)
    top = max(expected, len(arrivals), 1)

    def x(moment: datetime) -> float:
        return round(pad + (width - 2 * pad) * (moment - start).total_seconds() / span, 1)

    def y(count: int) -> float:
        return round(height - pad - (height - 2 * pad) * count / top, 1)

    points = [f"{x(start)},{y(0)}"]
    for n, moment in enumerate(arrivals, 1):
        points.append(f"{x(moment)},{y(n - 1)}")
        points.append(f"{x(moment)},{y(n)}")
    points.append(f"{x(min(as_of, end))},{y(len(arrivals))}")
    fmt = "%m-%d %H:%M"
    return Chart(width, height, " ".join(points), x(deadline) if start <= deadline <= end else None,
                 len(arrivals), expected, start.astimezone(tz).strftime(fmt), end.astimezone(tz).strftime(fmt),
                 deadline.astimezone(tz).strftime(fmt))  # fmt: skip


def install(env: Environment, config: Config) -> None:
    tz = config.campaign.timezone

    def local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return moment.astimezone(tz).strftime(fmt) if moment else "—"

    def iso(moment: datetime | None) -> str:
        return moment.astimezone(tz).isoformat(timespec="minutes") if moment else ""

    def percent(value: float) -> str:
        return f"{value * 100:.1f}%"

    env.filters.update(
        local=local,
        iso=iso,
        percent=percent,
        status=lambda code: label(code, Status),
        channel=lambda code: label(code, Channel),
        kind=lambda code: label(code, MessageKind),
        mailkind=lambda code: label(code, MailKind),
        ledger=lambda code: label(code, DeliveryState),
        outcome=lambda code: label(code, DeliveryOutcome),  # what one run did: 此前已处理 …
        source=lambda code: SOURCE.get(code, code),
        basis=lambda code: label(code, ReceivedBasis),
        action_label=lambda code: label(code, Action),
        size=lambda n: f"{n / 1024:,.0f} KB" if n >= 1024 else f"{n} 字节",
    )
    env.globals.update(CHANNEL_LABELS={c.value: label(c) for c in Channel}, ACTION_LABELS={a.value: label(a) for a in Action},
                       campaign_name=config.campaign.name)  # fmt: skip
    env.globals["chart"] = lambda d: arrivals_chart(d.arrivals, d.deadline, d.as_of, d.overall.expected, tz)
