"""The Jinja environment and the inlined assets shared by every clew page.

Pages are single files: CSS, JavaScript (clew's own and the vendored uPlot, MIT, see
``reports/static/uPlot.LICENSE``) and data are inlined. Autoescaping is on for every
template; data goes into a ``<script type="application/json">`` block through ``|tojson``
(which escapes ``<``, ``>``, ``&`` and ``'``) and is put into the page by the scripts with
``textContent`` only. A Content-Security-Policy allows exactly the inlined scripts (by hash)
and no network at all.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = ["ENV", "assets", "render"]

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

#: Inlined scripts, in page order.
_SCRIPTS = ("uPlot.iife.min.js", "views.js", "report.js")
_STYLES = ("uPlot.min.css", "report.css")


def _static(name: str) -> str:
    return resources.files("reports").joinpath("static", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def assets() -> dict[str, Any]:
    """The inlined CSS and scripts, and the Content-Security-Policy that admits them."""
    scripts = [_static(n) for n in _SCRIPTS]
    for name, text in zip(_SCRIPTS, scripts, strict=True):
        if "</script" in text.lower():  # would end the inline block early
            raise ValueError(f"reports/static/{name} contains </script")
    css = "\n".join(_static(n) for n in _STYLES)
    csp = (
        "default-src 'none'; "
        f"script-src {' '.join(_sha256(s) for s in scripts)}; "
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    )
    return {
        "css": Markup(css),
        "scripts": [Markup(s) for s in scripts],
        "csp": csp,
    }


def render(template: str, **context: Any) -> str:
    """Render ``template`` with the shared assets and a generation time."""
    return ENV.get_template(template).render(
        assets=assets(),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        **context,
    )
