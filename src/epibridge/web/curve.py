"""The epidemic curve's model: bars in SVG pixels, axis ticks, provisional periods.

One bar per period (weeks, or months where the country releases monthly): reported
cases, or cases corrected for reporting completeness and under-ascertainment with their
95% interval as a whisker. **Provisional**: a period that ended less than
``PROVISIONAL_DAYS`` (28) before the page's time is drawn hatched and lighter: late
reports still arrive for it (the hub does not nowcast here), so its bar will usually
grow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from epibridge.web.i18n import DASH, Formatter

PROVISIONAL_DAYS = 28
WIDTH, HEIGHT = 640.0, 240.0
LEFT, BOTTOM, TOP = 48.0, 28.0, 8.0


@dataclass(frozen=True)
class Point:
    period: str
    start: date
    end: date
    value: float | None  # None: withheld
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    provisional: bool
    withheld: bool
    title: str
    whisker: tuple[float, float] | None  # y of the interval's high and low


@dataclass
class CurveModel:
    width: float = WIDTH
    height: float = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (y, label)
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x, label)
    provisional_from: date | None = None


def provisional(end: date, today: date) -> bool:
    return end > today - timedelta(days=PROVISIONAL_DAYS)


def _nice(top: float) -> float:
    """A round axis maximum at or above ``top``."""
    if top <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= top:
            return float(step * power)
    return float(10 * power)


def build_curve(points: Sequence[Point], today: date, fmt: Formatter) -> CurveModel:
    model = CurveModel()
    if not points:
        return model
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - TOP - BOTTOM
    tallest = max((p.high if p.high is not None else p.value or 0.0) for p in points)
    top = _nice(tallest)
    step = plot_w / len(points)
    gap = min(2.0, step * 0.2)

    def y_of(value: float) -> float:
        return round(TOP + plot_h * (1 - value / top), 1)

    for i in range(5):
        value = top * i / 4
        model.ticks.append((y_of(value), fmt.number(value, 0 if top >= 4 else 1)))
    every = max(1, math.ceil(len(points) / 8))
    for i, p in enumerate(points):
        x = round(LEFT + i * step + gap / 2, 1)
        late = provisional(p.end, today)
        if late and model.provisional_from is None:
            model.provisional_from = p.start
        value = p.value or 0.0
        whisker = (y_of(p.high), y_of(p.low)) if p.low is not None and p.high is not None else None
        interval = (
            f" ({fmt.number(p.low)}{DASH}{fmt.number(p.high)})"
            if p.low is not None and p.high is not None
            else ""
        )
        title = f"{p.period}: " + (DASH if p.value is None else fmt.number(p.value) + interval)
        model.bars.append(
            Bar(
                x,
                y_of(value),
                round(max(step - gap, 0.5), 1),
                round(y_of(0) - y_of(value), 1),
                late,
                p.value is None,
                title,
                whisker,
            )
        )
        if i % every == 0:
            model.labels.append((round(x + (step - gap) / 2, 1), p.period))
    return model
