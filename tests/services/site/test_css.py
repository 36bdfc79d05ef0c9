"""The site's stylesheet: the focus ring stands out (WCAG 2.2, 1.4.11: at least 3:1 against
the colours around it), issue 14."""

from __future__ import annotations

import re
from pathlib import Path

CSS = (Path(__file__).parents[3] / "services/site/static/site.css").read_text()


def _var(name: str) -> str:
    found = re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})", CSS)
    assert found, name
    return found.group(1)


def _luminance(colour: str) -> float:
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_is_computed_as_wcag_says() -> None:
    assert round(contrast("#ffffff", "#000000"), 1) == 21.0
    assert round(contrast("#f2b600", "#ffffff"), 2) == 1.83  # the old ring, too faint


def test_the_focus_ring_stands_out_on_every_background() -> None:
    ring, ring_on_brand = _var("focus-color"), _var("focus-on-brand")
    for background in (_var("card"), _var("bg"), _var("brand-soft")):
        assert contrast(ring, background) >= 3, background
    assert contrast(ring_on_brand, _var("brand")) >= 3
    assert ".top { --focus: 3px solid var(--focus-on-brand); }" in CSS
