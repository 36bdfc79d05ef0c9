"""The report a support manager reads, in French: a table in the terminal, a page with charts.

Times are Europe/Paris; durations of work in business hours (« j » is a business day of
8 hours). Pure module: the outcome of a run in, text out.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from assistance import french
from services.evolutions.domain import ReviewSlot
from simulation import svg
from simulation.figures import Figures, Report, kind_label
from simulation.scenario import ROLE_LABELS, Scenario
from simulation.staffing import Trial

TEMPLATES = Path(__file__).parent / "templates"
DAY_HOURS = 8.0  # a business day, for durations of work


@dataclass(frozen=True)
class Run:
    """What the report says of one run, besides its figures."""

    scenario: Scenario
    report: Report
    arrivals: int
    commands: int
    signals: int
    refused: dict[str, int]
    calls: int
    calls_given_up: int
    waits_for_timers: int
    wall_seconds: float
    cpu_seconds: float
    server_cpu_seconds: float | None
    finished_at: datetime


# --- words and numbers ---------------------------------------------------------------------


def number(n: int) -> str:
    """« 1 763 »."""
    return f"{n:,}".replace(",", "\u202f")


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value:.1f}".removesuffix(".0").replace(".", ",")
    return f"{text} %"


def ratio(part: int, whole: int) -> str:
    return f"{part}/{whole}" if whole else "—"


def work_time(hours: float | None) -> str:
    """Business hours, worded: « 45 min », « 3 h 20 », « 2 j 3 h » (a day is 8 hours)."""
    if hours is None:
        return "—"
    minutes = round(hours * 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < DAY_HOURS * 60:
        h, m = divmod(minutes, 60)
        return f"{h} h {m:02d}" if m else f"{h} h"
    days, h = divmod(round(minutes / 60), round(DAY_HOURS))
    return f"{days} j {h} h" if h else f"{days} j"


def elapsed(seconds: float) -> str:
    """« 4 min 12 s », « 38 s »."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    m, s = divmod(whole, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def day_label(iso: str) -> str:
    """« lun. 03/05 »."""
    day = date.fromisoformat(iso)
    return f"{french.WEEKDAYS[day.weekday()][:3]}. {day:%d/%m}"


def hours_text(hours: str) -> str:
    """« 09:00-12:00,13:00-18:00 » → « 09:00–12:00 et 13:00–18:00 »."""
    periods = [p.strip().replace("-", "–") for p in hours.split(",") if p.strip()]
    return " et ".join([", ".join(periods[:-1]), periods[-1]] if len(periods) > 1 else periods)


def slot_text(slot: str) -> str:
    """« monday 10:00 » → « le lundi à 10:00 »."""
    s = ReviewSlot.parse(slot)
    return f"le {french.WEEKDAYS[s.weekday]} à {s.hour:02d}:{s.minute:02d}"


def team(s: Scenario) -> str:
    st = s.staff
    return (
        ", ".join(
            f"{n} {word}{'s' if n > 1 else ''}"
            for n, word in (
                (st.technicians, "technicien"),
                (st.trainers, "formateur"),
                (st.developers, "développeur"),
            )
        )
        + f", {st.product_managers} chef{'s' if st.product_managers > 1 else ''} de produit"
    )


def period(s: Scenario) -> str:
    last = s.start + timedelta(weeks=s.weeks) - timedelta(days=1)
    end = s.end.date() - timedelta(days=1)
    text = f"demandes du {french.day(s.start)} au {french.day(last)}"
    if s.drain_weeks:
        text += f", puis l'équipe continue sans nouvelle demande jusqu'au {french.day(end)}"
    return text


def problems(report: Report) -> list[str]:
    """What must never happen, in words: an empty list when the run shows none."""
    t = report.total
    found = []
    if not t.breaches_handled:
        found.append(
            f"{t.late} dépassement(s) de l'engagement de première réponse, mais {t.warned} "
            f"alerté(s) à 75 %, {t.detected} constaté(s) à l'échéance, {t.escalated} "
            f"escaladé(s), {t.false_alarms} fausse(s) alerte(s)"
        )
    if t.without_owner:
        found.append(f"{t.without_owner} dossier(s) sorti(s) de la file sans technicien")
    if t.without_timer:
        found.append(f"{t.without_timer} dossier(s) ouvert(s) sans minuterie active")
    if t.never_taken:
        found.append(
            f"{t.never_taken} dossier(s) encore dans la file à la fin, après l'échéance de leur "
            "première réponse"
        )
    if t.fixes_told < t.fixes_due:
        found.append(f"{t.fixes_due - t.fixes_told} client(s) non prévenu(s) d'un correctif livré")
    if t.decisions_told < t.decisions:
        found.append(f"{t.decisions - t.decisions_told} décision(s) d'évolution non annoncée(s)")
    return found


# --- the terminal --------------------------------------------------------------------------

HEADERS = (
    "",
    "Demandes",
    "À temps",
    "Dépassés",
    "Alertés/constatés/escaladés",
    "Sans suivi",
    "Form. J/J+1",
    "Correctifs",
    "Décisions",
    "Clôture méd.",
    "9e décile",
)
LEGEND = (
    "À temps : premières réponses dans l'engagement. Dépassés : premières réponses en retard, "
    "chacune alertée à 75 % du délai, constatée à l'échéance et escaladée aux administrateurs. "
    "Sans suivi : dossiers sans technicien, sans minuterie active ou restés dans la file après "
    "leur échéance. "
    "Form. J/J+1 : formations réservées le jour même ou le jour ouvré suivant. Correctifs, "
    "Décisions : clients prévenus / concernés. Clôture : délai en heures ouvrées (j = 8 h)."
)


def cells(row: Figures) -> list[str]:
    return [
        row.label,
        number(row.dossiers),
        percent(row.in_time_pct),
        str(row.late),
        f"{row.warned}/{row.detected}/{row.escalated}" if row.late else "—",
        str(row.forgotten),
        percent(row.trainings_pct),
        ratio(row.fixes_told, row.fixes_due),
        ratio(row.decisions_told, row.decisions),
        work_time(row.closure_median),
        work_time(row.closure_p90),
    ]


def table(rows: list[Figures], first: str) -> str:
    lines = [[first, *HEADERS[1:]], *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    out = []
    for n, line in enumerate(lines):
        padded = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(padded).rstrip())
        if n == 0:
            out.append("  ".join("─" * w for w in widths))
    return "\n".join(out)


def terminal(run: Run, trials: list[Trial] | None = None, html_path: Path | None = None) -> str:
    s, r = run.scenario, run.report
    t = r.total
    parts = [
        f"Simulation « {s.name} »",
        f"{period(s)}.",
        f"Équipe : {team(s)}. {number(run.arrivals)} demandes "
        f"({number(run.calls)} appels, dont {number(run.calls_given_up)} déposés sur le site "
        "faute de réponse).",
        "",
        "Par semaine d'arrivée",
        table([*r.weeks, t], "Semaine"),
        "",
        "Par nature (classement du diagnostic)",
        table([*r.kinds, t], "Nature"),
        textwrap.fill(LEGEND, 100),
        "",
        f"Engagement de première réponse : {percent(t.in_time_pct)} à temps "
        f"({number(t.in_time)} sur {number(t.responses_due)}).",
        f"Suivi des dossiers : {r.samples} contrôles, à la fermeture de chaque jour ouvré et à "
        "la fin ; "
        f"{t.without_owner} dossier sans technicien, {t.without_timer} sans minuterie active, "
        f"{t.never_taken} resté dans la file après son échéance ; {number(t.reminders)} "
        "relances et "
        f"{number(t.escalations)} escalades pour inactivité.",
        f"Ouverts à la fin : {number(t.open_at_end)}"
        + (
            " (en attente d'un correctif, d'une décision, d'une formation ou d'une "
            "confirmation du client)."
            if t.open_at_end
            else "."
        ),
    ]
    found = problems(r)
    parts.append("Anomalies : aucune." if not found else "Anomalies : " + " ; ".join(found) + ".")
    if run.refused:
        refused = ", ".join(f"{name} ({n})" for name, n in sorted(run.refused.items()))
        parts.append(f"Commandes refusées par les dossiers : {refused}.")
    if trials:
        parts += ["", staffing_text(trials)]
    parts += ["", execution(run)]
    if html_path is not None:
        parts.append(f"Rapport détaillé : {html_path}")
    return "\n".join(parts)


def execution(run: Run) -> str:
    s = run.scenario
    weeks = s.weeks + s.drain_weeks
    text = (
        f"Durée : {elapsed(run.wall_seconds)} pour {weeks} semaine{'s' if weeks > 1 else ''} "
        f"simulée{'s' if weeks > 1 else ''} "
        f"({number(run.arrivals)} dossiers, {number(run.commands)} commandes, "
        f"{number(run.signals)} signaux) ; processeur : {elapsed(run.cpu_seconds)} pour le "
        "moteur des dossiers et les personnes simulées"
    )
    if run.server_cpu_seconds is not None:
        text += f", {elapsed(run.server_cpu_seconds)} pour le serveur de test Temporal"
    return text + f" ({os.cpu_count() or '?'} cœurs)."


def staffing_text(trials: list[Trial]) -> str:
    lines = ["Recherche de l'équipe minimale"]
    for trial in trials:
        lines.append(
            f"  {trial.technicians} technicien(s), {trial.trainers} formateur(s) : première "
            f"réponse à temps {percent(trial.first_responses)}, formation J/J+1 "
            f"{percent(trial.trainings)} ({elapsed(trial.seconds)})"
        )
    best = trials[-1].answer if trials else None
    spent = f"{len(trials)} simulations, {elapsed(sum(t.seconds for t in trials))} en tout"
    if best is not None:
        lines.append(
            f"Équipe minimale : {best[0]} technicien(s) et {best[1]} formateur(s) ({spent})."
        )
    elif trials:
        lines.append(f"Aucune équipe dans les limites de la recherche n'y arrive ({spent}).")
    return "\n".join(lines)


# --- the page ------------------------------------------------------------------------------


def html(run: Run, trials: list[Trial] | None = None) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    r, s = run.report, run.scenario
    target = 100.0
    days = [d for d in r.days if d.dossiers]
    charts = [
        svg.columns(
            "Premières réponses dans l'engagement, par jour d'arrivée (%)",
            [
                svg.Bar(
                    day_label(d.label),
                    d.in_time_pct,
                    f"{percent(d.in_time_pct)} ({d.in_time}/{d.responses_due})",
                    svg.GOOD if (d.in_time_pct or 0) >= target else svg.BAD,
                )
                for d in days
            ],
            top=100,
            target=target,
            unit=" %",
        ),
        svg.stacked(
            "Demandes par jour d'arrivée et par nature",
            [day_label(d.label) for d in days],
            _kinds_by_day(run),
        ),
        svg.columns(
            "Demandes par heure de la semaine (lundi 0 h → dimanche 23 h)",
            [
                svg.Bar(f"{french.WEEKDAYS[h // 24][:3]}. {h % 24} h", float(n), str(n))
                for h, n in enumerate(r.arrivals_by_hour)
            ],
            top=svg.nice(max(r.arrivals_by_hour, default=1)),
            label_every=12,
            bar_width=5,
        ),
        svg.rows(
            "Délai de clôture par nature, en heures ouvrées (médiane, 9e décile)",
            [
                (
                    k.label,
                    [
                        (
                            k.closure_median or 0,
                            svg.NEUTRAL,
                            f"médiane {work_time(k.closure_median)}",
                        ),
                        (
                            k.closure_p90 or 0,
                            svg.SERIES[4],
                            f"9e décile {work_time(k.closure_p90)}",
                        ),
                    ],
                )
                for k in r.kinds
                if k.closure_hours
            ],
            unit="h",
        ),
    ]
    if trials:
        charts.append(
            svg.columns(
                "Recherche de l'équipe : premières réponses à temps selon le nombre de techniciens",
                [
                    svg.Bar(
                        f"{t.technicians} tech. · {t.trainers} form.",
                        t.first_responses,
                        percent(t.first_responses),
                        svg.GOOD if t.technicians_ok else svg.BAD,
                    )
                    for t in trials
                ],
                top=100,
                target=trials[0].target,
                unit=" %",
            )
        )
    template = env.get_template("report.html")
    return template.render(
        run=run,
        s=s,
        r=r,
        t=r.total,
        team=team(s),
        period=period(s),
        weeks=[cells(w) for w in [*r.weeks, r.total]],
        kinds=[cells(k) for k in [*r.kinds, r.total]],
        headers=HEADERS,
        charts=[Markup(c) for c in charts],
        problems=problems(r),
        execution=execution(run),
        trials=trials or [],
        staffing=staffing_text(trials) if trials else "",
        percent=percent,
        number=number,
        elapsed=elapsed,
        finished=french.moment(run.finished_at),
        peaks=[
            f"{french.day(p.first)}"
            + (f" au {french.day(p.last)}" if p.last != p.first else "")
            + f" : × {p.factor:g}"
            + (f" ({p.reason})" if p.reason else "")
            for p in s.peaks
            if p.last >= s.start and p.first < s.end.date()
        ],
        absences=[
            f"{ROLE_LABELS[a.role]} n° {a.number} du {french.day(a.first)} au "
            f"{french.day(a.last)}" + (f" ({a.reason})" if a.reason else "")
            for a in s.staff.absences
            if a.last >= s.start and a.first < s.end.date()
        ],
        closed=[french.day(d) for d in s.closed_days],
        hours=hours_text(s.business_hours),
        review=slot_text(s.review_slot),
        releases=[f"{rel.software} le {french.moment_short(rel.at)}" for rel in s.release_times()],
    )


def _kinds_by_day(run: Run) -> list[tuple[str, list[int]]]:
    days = [d for d in run.report.days if d.dossiers]
    series = []
    for kind in ("usage", "advanced_usage", "bug", "evolution", None):
        counts = [run.report.day_kinds.get((d.label, kind), 0) for d in days]
        if any(counts):
            series.append((kind_label(kind), counts))
    return series
