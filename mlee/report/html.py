"""Assemble the report page: the template with its CSS, JavaScript and data inlined into one HTML file.

The page needs nothing from the network: scripts and styles are inline, label images are data URIs, and a
Content-Security-Policy forbids every fetch. The inline script is allowed by its sha256 only, so even a string
that escaped its JSON could not run as script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from functools import lru_cache
from importlib import resources
from typing import Any

#: Script assets in load order: each defines one global the later ones use.
SCRIPTS = ("rating.js", "charts.js", "views.js", "app.js")

# Characters that must not appear literally in an inline <script> JSON block: "<" could start "</script>" or
# "<!--", and U+2028/U+2029 break older JavaScript string parsing. JSON escapes keep the value identical.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of one file of ``mlee/report/assets``."""
    return resources.files("mlee.report").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON text safe to place inside ``<script type="application/json">``: deterministic, nothing HTML-active.

    Raises:
        ValueError: when ``data`` holds NaN or an infinity (not JSON).
    """
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escape in _JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return text


def page_script() -> str:
    """All page JavaScript, concatenated in load order."""
    return "\n".join(asset(name) for name in SCRIPTS)


def render_page(payload: dict[str, Any], title: str, mlee_version: str) -> str:
    """The complete HTML document for a report payload.

    Args:
        payload: The page data (see :func:`mlee.report.payload.build_payload`); embedded as JSON.
        title: Page title (escaped here).
        mlee_version: Version shown in the footer.
    """
    script = page_script()
    if "</script" in script.lower():  # an asset must never close its own tag
        raise ValueError("a report script asset contains '</script'")
    # The hash covers the exact text between <script> and </script>, newlines included.
    body = "\n" + script + "\n"
    digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
    replacements = {
        "__SCRIPT_HASH__": f"sha256-{digest}",
        "__MLEE_VERSION__": html.escape(mlee_version),
        "__TITLE__": html.escape(title),
        "__CSS__": asset("report.css"),
        "__DATA__": script_json(payload),
    }
    page = asset("template.html")
    # One pass over the template: a replaced value is never searched again, so user text holding a
    # placeholder name cannot inject anything.
    out = []
    rest = page
    marker = "__"
    while rest:
        start = rest.find(marker)
        if start < 0:
            out.append(rest)
            break
        end = rest.find(marker, start + 2)
        key = rest[start:end + 2] if end >= 0 else ""
        if key in replacements:
            out.append(rest[:start])
            out.append(replacements[key])
            rest = rest[end + 2:]
        elif key == "__JS__":
            out.append(rest[:start])
            out.append(script)
            rest = rest[end + 2:]
        else:
            out.append(rest[:start + 2])
            rest = rest[start + 2:]
    return "".join(out)
