"""Server-rendered bar charts: the geometry of SVG bars, no chart library, no script.

Pure: numbers in, rectangles out; the template `_charts.html` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH = 560
LABEL_W = 180
BAR_W = 280
ROW_H = 30
BAR_H = 20


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    css: str  # the series' class: its colour comes from the style sheet
    value: int
    name: str


@dataclass(frozen=True)
class Row:
    label: str
    y: float
    caption: str
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    title: str
    rows: list[Row]
    legend: list[tuple[str, str]]  # (css, name)
    width: int = WIDTH
    label_w: int = LABEL_W
    bar_w: int = BAR_W
    row_h: int = ROW_H
    bar_h: int = BAR_H

    @property
    def height(self) -> int:
        return max(1, len(self.rows)) * self.row_h + 6


def stacked(
    title: str,
    rows: list[tuple[str, list[int], str]],
    series: list[tuple[str, str]],
) -> Chart:
    """One bar per row, split into the series' shares of the row's total (each bar spans
    100 %): `rows` are (label, one value per series, caption)."""
    drawn = []
    for i, (label, values, caption) in enumerate(rows):
        total = sum(values)
        x = float(LABEL_W)
        segments = []
        for (css, name), value in zip(series, values, strict=True):
            width = BAR_W * value / total if total else 0.0
            if width > 0:
                segments.append(Segment(round(x, 2), round(width, 2), css, value, name))
            x += width
        drawn.append(Row(label, i * ROW_H + 3, caption, segments))
    return Chart(title, drawn, series)


def bars(title: str, rows: list[tuple[str, int]], css: str = "s-volume") -> Chart:
    """One bar per row, lengths proportional to the largest value."""
    top = max((value for _, value in rows), default=0)
    drawn = []
    for i, (label, value) in enumerate(rows):
        width = BAR_W * value / top if top else 0.0
        segment = [Segment(float(LABEL_W), round(width, 2), css, value, label)] if value else []
        drawn.append(Row(label, i * ROW_H + 3, str(value), segment))
    return Chart(title, drawn, [])


def percent(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None
