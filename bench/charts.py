"""Small SVG line charts for docs/benchmarks.md: one line per series over shared x labels,
readable on GitHub and in any browser, with no plotting library to install."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from bench.openloop import OpenLoopRun

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 40, 50
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _nice_top(value: float) -> float:
    """A round number at or above `value` for the y axis."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def line_chart(title: str, x_labels: list[str], series: dict[str, list[float]], y_unit: str) -> str:
    """An SVG document; NaN points are left out of their line."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for points in series.values() for v in points if not math.isnan(v)]
    top = _nice_top(max(values, default=1.0))

    def x(i: int) -> float:
        return LEFT + (plot_w * i / max(len(x_labels) - 1, 1))

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for k in range(5):
        v = top * k / 4
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
    out.append(
        f'<text x="16" y="{TOP + plot_h / 2:.0f}" transform="rotate(-90 16 '
        f'{TOP + plot_h / 2:.0f})" text-anchor="middle">{escape(y_unit)}</text>'
    )
    for i, label in enumerate(x_labels):
        out.append(
            f'<text x="{x(i):.1f}" y="{TOP + plot_h + 20}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    for n, (name, points) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        drawn = [(x(i), y(v)) for i, v in enumerate(points) if not math.isnan(v)]
        if drawn:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in drawn)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            out += [
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in drawn
            ]
        ly = TOP + 16 * n + 8
        out.append(
            f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 32}" y1="{ly}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{WIDTH - RIGHT + 38}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def open_loop_chart(runs: list[OpenLoopRun], q: float = 99) -> str:
    """p`q` latency per operation against its share of capacity."""
    shares = sorted({run.share for run in runs})
    series: dict[str, list[float]] = {}
    for run in runs:
        series.setdefault(run.operation, [math.nan] * len(shares))
        series[run.operation][shares.index(run.share)] = run.latency_ms(q)
    labels = [f"{share:.0%} of capacity" for share in shares]
    return line_chart(f"Open loop: p{q:g} latency by rate", labels, series, "ms")


def write(folder: Path, name: str, svg: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(svg, encoding="utf-8")
    return path
