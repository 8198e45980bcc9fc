"""Count the SQL statements a block of code sends, to pin pages to a fixed number."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.db import engine


@contextmanager
def counting_queries() -> Iterator[list[str]]:
    engine_class = type(engine())
    original = engine_class.run_querystring
    seen: list[str] = []

    async def counted(self: Any, querystring: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(querystring)[:120])
        return await original(self, querystring, *args, **kwargs)

    engine_class.run_querystring = counted  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        engine_class.run_querystring = original  # type: ignore[method-assign]
