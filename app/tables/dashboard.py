"""The clinic's dashboard: facts recorded when things happen, the monthly figures the worker
rolls them up into, the follow-up of invited patients, and the one-question survey.

A fact carries the clinic-local day and month it happened in (written once, at insert), so
every roll-up groups by plain columns on SQLite and PostgreSQL alike and a month boundary is
the clinic's midnight, not UTC's. The page reads only `dashboard_figure`, never the facts.
"""

from piccolo.columns import (
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from app.tables.clinic import Location
from app.tables.columns import created_at_column, public_id_column
from app.tables.people import Account, Patient


class Fact(Table):
    """One thing that happened (app/services/facts.py lists the kinds); no health data."""

    id: Serial
    kind = Varchar(length=30)
    # The portal area it counts as use of (messages, visits, results, bills), or "".
    area = Varchar(length=12, default="")
    patient = ForeignKey(references=Patient, null=True, default=None, on_delete=OnDelete.cascade)
    location = ForeignKey(references=Location, null=True, default=None, on_delete=OnDelete.set_null)
    occurred_at = Timestamptz()
    # The clinic-local day and the first day of its month.
    day = Date()
    month = Date()
    # portal | staff | phone | sms | email | print | qr | ...: how it happened, when it matters.
    channel = Varchar(length=10, default="")
    # A figure that goes with it: minutes to the first answer, an amount, a score.
    value = DoublePrecision(null=True, default=None)


class DashboardFigure(Table, tablename="dashboard_figure"):
    """One figure for one month, for one location (0: the whole clinic), rolled up by the
    worker from the facts and the visits: numerator over denominator, or a value alone."""

    id: Serial
    month = Date()
    location = Integer(default=0)
    metric = Varchar(length=40)
    numerator = DoublePrecision(default=0.0)
    denominator = DoublePrecision(default=0.0)
    computed_at = created_at_column()


class FollowUp(Table, tablename="follow_up"):
    """An invited patient who has not signed in: the reminders sent, and whether they said
    not to be reminded again (then none is ever sent)."""

    id: Serial
    public_id = public_id_column()
    patient = ForeignKey(references=Patient, on_delete=OnDelete.cascade, unique=True)
    reminders = Integer(default=0)
    last_reminded_at = Timestamptz(null=True, default=None)
    opted_out_at = Timestamptz(null=True, default=None)


class SurveyAnswer(Table, tablename="survey_answer"):
    """ "How easy was that?" (1-5) after a task, or "would you recommend us?" (0-10); a
    skipped question is kept with no score, so it is not asked again this month."""

    id: Serial
    account = ForeignKey(references=Account, on_delete=OnDelete.cascade, index=True)
    patient = ForeignKey(references=Patient, null=True, default=None, on_delete=OnDelete.cascade)
    question = Varchar(length=10)  # ease | recommend
    task = Varchar(length=12, default="")  # booking | reply_read | payment
    score = Integer(null=True, default=None)
    comment = Varchar(length=500, default="")
    created_at = created_at_column()
