"""The one-question survey: after a task done in the portal (a visit booked, a reply read,
later a payment), "How easy was that?" from 1 to 5 with an optional comment, at most once a
month per person; every three months also "How likely are you to recommend us?" (0 to 10).
Skipping counts as an answer, so no one is asked again that month.

An answer is a fact for the dashboard (survey_ease, survey_recommend) and a row staff read
for its comment. A comment is the person's own words: the form asks for no health details.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.access import Actor
from app.clock import utcnow
from app.db import write_transaction
from app.services.facts import record_fact
from app.tables import SurveyAnswer

TASKS = ("booking", "reply_read", "payment")
EASE_EVERY = timedelta(days=30)
RECOMMEND_EVERY = timedelta(days=91)
MAX_COMMENT = 500


class SurveyError(ValueError):
    """An answer outside the scale, or a task we do not ask about."""


@dataclass(frozen=True)
class SurveyPrompt:
    task: str
    recommend: bool  # ask "would you recommend us?" too


async def _asked_since(account_id: int, question: str, every: timedelta) -> bool:
    return bool(
        await SurveyAnswer.exists().where(
            SurveyAnswer.account == account_id,
            SurveyAnswer.question == question,
            SurveyAnswer.created_at > utcnow() - every,
        )
    )


async def survey_due(actor: Actor, *, task: str) -> SurveyPrompt | None:
    """The survey to show after this task, or None (asked this month already)."""
    if task not in TASKS or await _asked_since(actor.account_id, "ease", EASE_EVERY):
        return None
    recommend = not await _asked_since(actor.account_id, "recommend", RECOMMEND_EVERY)
    return SurveyPrompt(task=task, recommend=recommend)


def _score(text: str, low: int, high: int) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise SurveyError("score")
    return int(text)


async def survey_answer(
    actor: Actor, *, task: str, ease: str, recommend: str, comment: str, skip: bool
) -> bool:
    """Keep the answer (or the skip); False when this month's was given already."""
    if task not in TASKS:
        raise SurveyError("task")
    ease_score = None if skip else _score(ease, 1, 5)
    recommend_score = None if skip else _score(recommend, 0, 10)
    comment = "" if skip else " ".join(comment.split())[:MAX_COMMENT]
    now = utcnow()
    patient_id = actor.acting_patient_id
    async with write_transaction():
        if await _asked_since(actor.account_id, "ease", EASE_EVERY):
            return False
        asks_recommend = not await _asked_since(actor.account_id, "recommend", RECOMMEND_EVERY)
        await SurveyAnswer.insert(
            SurveyAnswer(
                account=actor.account_id,
                patient=patient_id,
                question="ease",
                task=task,
                score=ease_score,
                comment=comment,
                created_at=now,
            )
        )
        if ease_score is not None:
            await record_fact("survey_ease", patient_id, occurred_at=now, value=ease_score)
        if asks_recommend and (recommend_score is not None or skip):
            await SurveyAnswer.insert(
                SurveyAnswer(
                    account=actor.account_id,
                    patient=patient_id,
                    question="recommend",
                    task=task,
                    score=recommend_score,
                    created_at=now,
                )
            )
            if recommend_score is not None:
                await record_fact(
                    "survey_recommend", patient_id, occurred_at=now, value=recommend_score
                )
    return True
