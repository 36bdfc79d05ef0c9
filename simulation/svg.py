"""Charts for the report, as inline SVG: no library, no script, readable without the page's
style sheet (colours are attributes). Pure: numbers in, markup out, every text escaped."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

FONT = "font-family='system-ui, sans-serif' font-size='11'"
INK = "#1f2933"
GRID = "#d9dee3"
GOOD = "#2f855a"
BAD = "#c53030"
NEUTRAL = "#3b6ea8"
SERIES = ("#3b6ea8", "#d69e2e", "#805ad5", "#2c7a7b", "#a0aec0")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: nothing to show (no data)
    caption: str = ""  # shown above the bar
    colour: str = NEUTRAL


def columns(
    title: str,
    bars: list[Bar],
    *,
    top: float,
    target: float | None = None,
    unit: str = "",
    height: int = 220,
    label_every: int = 1,
    bar_width: float = 18,
) -> str:
    """Vertical bars, one per item, from 0 to `top`; a dashed line at `target`."""
    left, right, upper, lower = 44, 10, 24, 46
    width = round(max(360, left + right + len(bars) * bar_width, _title_width(title)))
    plot_w, plot_h = width - left - right, height - upper - lower
    step = plot_w / max(len(bars), 1)
    parts = [_frame(title, width, height)]
    for i in range(5):  # the value axis: 0, 25, 50, 75, 100 % of the top
        value = top * i / 4
        y = upper + plot_h - plot_h * i / 4
        parts.append(
            f"<line x1='{left}' y1='{y:.1f}' x2='{width - right}' y2='{y:.1f}' stroke='{GRID}'/>"
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end' {FONT} fill='{INK}'>"
            f"{_text(_number(value))}{_text(unit)}</text>"
        )
    for i, bar in enumerate(bars):
        x = left + i * step
        if bar.value is not None:
            h = plot_h * min(bar.value, top) / top if top else 0
            parts.append(
                f"<rect x='{x + step * 0.15:.1f}' y='{upper + plot_h - h:.1f}' "
                f"width='{step * 0.7:.1f}' height='{h:.1f}' fill='{bar.colour}'>"
                f"<title>{_text(bar.label)} : {_text(bar.caption or _number(bar.value))}"
                f"</title></rect>"
            )
        if i % label_every == 0:
            cx, cy = x + step / 2, upper + plot_h + 10
            parts.append(
                f"<text x='{cx:.1f}' y='{cy:.1f}' {FONT} fill='{INK}' text-anchor='end' "
                f"transform='rotate(-45 {cx:.1f} {cy:.1f})'>{_text(bar.label)}</text>"
            )
    if target is not None and top:
        y = upper + plot_h - plot_h * min(target, top) / top
        parts.append(
            f"<line x1='{left}' y1='{y:.1f}' x2='{width - right}' y2='{y:.1f}' "
            f"stroke='{INK}' stroke-dasharray='4 3'/>"
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked(
    title: str,
    labels: list[str],
    series: list[tuple[str, list[int]]],
    *,
    height: int = 220,
    label_every: int = 1,
) -> str:
    """Vertical stacked bars (counts), one per label, one colour per series, with a legend."""
    left, right, upper, lower = 44, 10, 24, 64
    legend = sum(24 + 6.5 * len(name) for name, _ in series)
    width = round(max(360, left + right + len(labels) * 18, left + legend, _title_width(title)))
    plot_w, plot_h = width - left - right, height - upper - lower
    step = plot_w / max(len(labels), 1)
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = nice(max(totals, default=0))
    parts = [_frame(title, width, height)]
    for i in range(5):
        y = upper + plot_h - plot_h * i / 4
        parts.append(
            f"<line x1='{left}' y1='{y:.1f}' x2='{width - right}' y2='{y:.1f}' stroke='{GRID}'/>"
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end' {FONT} fill='{INK}'>"
            f"{_text(_number(top * i / 4))}</text>"
        )
    for i, label in enumerate(labels):
        x, base = left + i * step, float(upper + plot_h)
        for k, (name, values) in enumerate(series):
            h = plot_h * values[i] / top if top else 0
            if h > 0:
                parts.append(
                    f"<rect x='{x + step * 0.15:.1f}' y='{base - h:.1f}' width='{step * 0.7:.1f}' "
                    f"height='{h:.1f}' fill='{SERIES[k % len(SERIES)]}'><title>{_text(label)}, "
                    f"{_text(name)} : {values[i]}</title></rect>"
                )
            base -= h
        if i % label_every == 0:
            cx, cy = x + step / 2, upper + plot_h + 10
            parts.append(
                f"<text x='{cx:.1f}' y='{cy:.1f}' {FONT} fill='{INK}' text-anchor='end' "
                f"transform='rotate(-45 {cx:.1f} {cy:.1f})'>{_text(label)}</text>"
            )
    x = left
    for k, (name, _) in enumerate(series):  # the legend, along the bottom
        parts.append(
            f"<rect x='{x}' y='{height - 14}' width='10' height='10' "
            f"fill='{SERIES[k % len(SERIES)]}'/><text x='{x + 14}' y='{height - 5}' {FONT} "
            f"fill='{INK}'>{_text(name)}</text>"
        )
        x += 24 + 6.5 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def rows(title: str, items: list[tuple[str, list[tuple[float, str, str]]]], *, unit: str) -> str:
    """Horizontal bars: per item, one bar per (value, colour, caption), on a common scale."""
    label_w, bar_w, row_h = 200, 320, 16
    count = sum(max(len(bars), 1) for _, bars in items)
    height = 30 + count * row_h + len(items) * 8
    top = nice(max((v for _, bars in items for v, _, _ in bars), default=0))
    width = max(label_w + bar_w + 120, _title_width(title))
    parts = [_frame(title, width, height)]
    y = 28.0
    for label, bars in items:
        parts.append(
            f"<text x='{label_w - 8}' y='{y + 11:.1f}' text-anchor='end' {FONT} fill='{INK}'>"
            f"{_text(label)}</text>"
        )
        for value, colour, caption in bars:
            w = bar_w * value / top if top else 0
            parts.append(
                f"<rect x='{label_w}' y='{y:.1f}' width='{w:.1f}' height='{row_h - 3}' "
                f"fill='{colour}'/><text x='{label_w + w + 4:.1f}' y='{y + 11:.1f}' {FONT} "
                f"fill='{INK}'>{_text(caption)}</text>"
            )
            y += row_h
        y += 8
    parts.append("</svg>")
    return "".join(parts)


def _frame(title: str, width: int, height: int) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
        f"width='{width}' height='{height}' role='img' aria-label='{escape(title, quote=True)}'>"
        f"<text x='4' y='14' {FONT} font-weight='600' fill='{INK}'>{_text(title)}</text>"
    )


def _title_width(title: str) -> int:
    """Room for the title in bold 11 px type."""
    return round(8 + 6.6 * len(title))


def _text(value: str) -> str:
    """Text between tags: &, < and > escaped (quotes need not be)."""
    return escape(value, quote=False)


def nice(value: float) -> float:
    """A round top for an axis: 1, 2, 2.5 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 < value:
        power *= 10
    while power > value:
        power /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if power * factor >= value:
            return power * factor
    return power * 10


def _number(value: float) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return text.replace(".", ",")
