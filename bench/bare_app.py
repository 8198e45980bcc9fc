"""The baseline: a bare Litestar text response, served by the same server the same way."""

from litestar import Litestar, get


@get("/", sync_to_thread=False)
def hello() -> str:
    return "ok"


app = Litestar(route_handlers=[hello], openapi_config=None)
