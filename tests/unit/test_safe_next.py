"""Where to go after signing in: only a path on this site, however it is disguised."""

from __future__ import annotations

import pytest

from app.handlers.support import safe_next


@pytest.mark.parametrize("path", ["/home", "/results#r-abc", "/visits?show=past"])
def test_paths_on_this_site_are_kept(path: str) -> None:
    assert safe_next(path) == path


@pytest.mark.parametrize(
    "path",
    [
        None,
        "",
        "home",
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/ /evil.example",
        "javascript:alert(1)",
    ],
)
def test_anything_that_could_leave_the_site_falls_back(path: str | None) -> None:
    assert safe_next(path, "/home") == "/home"
