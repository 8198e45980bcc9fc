"""QR codes drawn on the server as inline SVG (segno): nothing to load in the browser."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(url: str, *, title: str = "") -> Markup:
    """An SVG QR code that scales to its box (CSS sets the size), black on white with the
    standard quiet zone so phone cameras read it from a screen."""
    code = segno.make(url, error="m", micro=False)
    # segno writes only path data and the (escaped) title: no text from the URL.
    return Markup(  # noqa: S704
        code.svg_inline(
            scale=1,
            border=4,
            svgclass="qr",
            lineclass=None,
            omitsize=True,
            light="#fff",
            title=title or None,
        )
    )
