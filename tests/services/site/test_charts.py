"""Bar charts drawn on the server: the geometry is exact."""

from __future__ import annotations

from services.site import charts


def test_stacked_bars_split_each_row_in_shares_of_its_total() -> None:
    chart = charts.stacked(
        "Première réponse",
        [("sem. du 23/11", [3, 1, 0], "75 %"), ("sem. du 30/11", [0, 0, 0], "—")],
        [("s-on-time", "dans les temps"), ("s-late", "en retard"), ("s-pending", "en attente")],
    )
    first, empty = chart.rows
    assert [(s.css, s.x, s.width, s.value) for s in first.segments] == [
        ("s-on-time", charts.LABEL_W, charts.BAR_W * 3 / 4, 3),
        ("s-late", charts.LABEL_W + charts.BAR_W * 3 / 4, charts.BAR_W / 4, 1),
    ]
    assert empty.segments == [] and empty.caption == "—"
    assert (first.y, empty.y) == (3, 3 + charts.ROW_H)
    assert chart.height == 2 * charts.ROW_H + 6


def test_bars_are_proportional_to_the_largest() -> None:
    chart = charts.bars("Canaux", [("Site web", 8), ("Mail", 2), ("Téléphone", 0)])
    widths = [[s.width for s in row.segments] for row in chart.rows]
    assert widths == [[charts.BAR_W], [charts.BAR_W / 4], []]
    assert [row.caption for row in chart.rows] == ["8", "2", "0"]
    assert charts.bars("Rien", []).rows == []


def test_percent() -> None:
    assert charts.percent(2, 3) == 67
    assert charts.percent(0, 0) is None
