"""The one-question survey after a task, and the note that the portal was installed (the
`appinstalled` event, or opened from the home screen), both for the clinic's dashboard."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from app.access import Actor
from app.services.facts import install_record
from app.services.survey import SurveyError, survey_answer
from app.web.guards import account_signed_in
from app.web.links import redirect_to

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


@post("/survey", name="survey_answer")
async def answer(
    request: Request[Any, Any, Any], actor: NamedDependency[Actor], data: Form
) -> Redirect:
    try:
        await survey_answer(
            actor,
            task=data.get("task", ""),
            ease=data.get("ease", ""),
            recommend=data.get("recommend", ""),
            comment=data.get("comment", ""),
            skip="skip" in data,
        )
    except SurveyError:
        return redirect_to(request, "home")
    return redirect_to(request, "home", notice=None if "skip" in data else "survey_thanks")


@post("/installed", name="app_installed", status_code=204)
async def installed(actor: NamedDependency[Actor], data: Form) -> Response[None]:
    await install_record(actor, standalone=data.get("how") == "standalone")
    return Response(None, status_code=204)


router = Router("/", guards=[account_signed_in], route_handlers=[answer, installed])
