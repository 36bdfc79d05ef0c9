"""The weekly review's data (R9), shared by its workflow (workflows/weekly_review.py) and its
activity (services/evolutions/activities.py): the workflow's input, the order the activity
builds, the summary it answers, and the activity's name. Plain dataclasses, no I/O: the
workflow imports them inside its sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

BUILD_AGENDA = "build_weekly_review"


@dataclass
class WeeklyReviewInput:
    software: str


@dataclass
class ReviewOrder:
    """What the activity builds: the review of `software` held at `held_at`."""

    software: str
    held_at: datetime


@dataclass
class ReviewSummary:
    review_id: str
    software: str
    week: str
    items: int
    new: int
    carried_over: int
    notified: list[str]
