"""The manager's report: words and numbers in French, the table, the page with its charts."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

from assistance.business_time import DEFAULT_CALENDAR
from assistance.commitment import DEFAULT_COMMITMENT
from simulation import report, svg
from simulation.figures import DossierFacts, compute
from simulation.report import Run, elapsed, percent, work_time
from simulation.scenario import load
from simulation.staffing import Trial

CAL = DEFAULT_CALENDAR


def test_durations_and_shares_are_worded_the_french_way() -> None:
    assert [work_time(h) for h in (None, 0.25, 1.0, 3 + 1 / 3, 8.0, 19.0, 23.9)] == [
        "—",
        "15 min",
        "1 h",
        "3 h 20",
        "1 j",
        "2 j 3 h",
        "3 j",
    ]
    assert [percent(v) for v in (None, 100.0, 98.25, 0.0)] == ["—", "100 %", "98,2 %", "0 %"]
    assert [elapsed(s) for s in (38.4, 252, 3725)] == ["38 s", "4 min 12 s", "1 h 02 min"]
    assert report.number(1763) == "1\u202f763"


def _run() -> Run:
    s = load()
    received = datetime(2032, 5, 3, 9, 30, tzinfo=CAL.tz)
    due = DEFAULT_COMMITMENT.due(CAL, received)
    facts = DossierFacts(
        dossier_id="d1",
        reference="D-2032-000001",
        channel="web",
        received_at=received,
        due=due,
        warning_at=DEFAULT_COMMITMENT.warning_at(CAL, received, due),
        kind="bug",
        status="waiting_service",
        technician_id="t1",
        taken_at=received,
        first_responded_at=received.replace(hour=10),
    )
    return Run(
        scenario=s,
        report=compute([facts], calendar=s.calendar(), end=s.end),
        arrivals=1,
        commands=3,
        signals=2,
        refused={},
        calls=0,
        calls_given_up=0,
        waits_for_timers=0,
        wall_seconds=252.0,
        cpu_seconds=300.0,
        server_cpu_seconds=80.0,
        finished_at=datetime(2032, 1, 1, 9, tzinfo=UTC),
    )


def test_the_terminal_table_says_the_commitments_without_any_code_name() -> None:
    trials = [
        Trial(4, 2, 97.5, 100.0, False, True, 60.0, 100.0),
        Trial(5, 2, 100.0, 100.0, True, True, 58.0, 100.0, answer=(5, 2)),
    ]
    text = report.terminal(_run(), trials)
    assert "Équipe : 4 techniciens, 2 formateurs, 6 développeurs, 1 chef de produit." in text
    assert "Engagement de première réponse : 100 % à temps (1 sur 1)." in text
    assert "Anomalies : aucune." in text
    assert "Équipe minimale : 5 technicien(s) et 2 formateur(s) (2 simulations, 1 min 58 s" in text
    assert "Durée : 4 min 12 s pour 6 semaines simulées" in text
    assert "sem. du 03/05" in text and "bug" in text
    for code in ("handed_over", "waiting_service", "advanced_usage", "bug_fix", "None"):
        assert code not in text


def test_the_page_is_well_formed_french_html_with_its_charts() -> None:
    page = report.html(_run(), [Trial(4, 2, 100.0, 100.0, True, True, 60.0, 100.0, (4, 2))])
    assert page.startswith("<!doctype html>") and '<html lang="fr">' in page
    assert page.count("<svg") == 5
    assert "Premières réponses dans l'engagement" in page
    assert "Équipe minimale" in page
    assert "waiting_service" not in page and "advanced_usage" not in page

    class Balance(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag not in ("meta", "br", "line", "rect", "img"):
                self.open.append(tag)

        def handle_startendtag(self, tag: str, attrs: object) -> None:
            pass

        def handle_endtag(self, tag: str) -> None:
            if tag in ("line", "rect"):
                return
            assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
            self.open.pop()

    parser = Balance()
    parser.feed(page)
    assert parser.open == []


def test_a_problem_is_spelled_out() -> None:
    run = _run()
    run.report.total.late = 2
    run.report.total.warned = 1
    run.report.total.without_timer = 1
    found = report.problems(run.report)
    assert found == [
        "2 dépassement(s) de l'engagement de première réponse, mais 1 alerté(s) à 75 %, "
        "0 constaté(s) à l'échéance, 0 escaladé(s), 0 fausse(s) alerte(s)",
        "1 dossier(s) ouvert(s) sans minuterie active",
    ]


def test_charts_escape_their_text_and_scale_to_a_round_top() -> None:
    chart = svg.columns("Parts <&>", [svg.Bar("a&b", 50.0)], top=100, target=100)
    assert "Parts &lt;&amp;&gt;" in chart and "a&amp;b" in chart
    assert [svg.nice(v) for v in (0, 7, 10, 11, 130, 260)] == [1.0, 10, 10, 20, 200, 500]
