"""What the label's QR code holds: a compact summary of the record, or a URL from a ``--qr-url`` template."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mlee.errors import UsageError

#: What the label shows for a figure that was not measured.
NA = "n/a"
#: Placeholders a ``--qr-url`` template may use; values are URL-quoted.
QR_FIELDS = ("model", "env", "task", "dataset", "compound", "id", "spec", "spec_sha256")
QR_MAX_CHARS = 1200


def qr_summary(c: dict[str, Any]) -> str:
    """The default QR text: the record in a few short lines (a small symbol scans from paper)."""
    def cap(s: str, n: int = 64) -> str:
        return s if len(s) <= n else s[: n - 1] + "\u2026"

    against = f"vs {cap(c['reference'], 40)}" if c["reference"] else "vs best of group"
    lines = ["mlee energy label", f"model: {cap(c['model'])}", f"env: {cap(c['environment'])}",
             f"task: {cap(c['task'], 24)}/{cap(c['dataset'], 24)}", f"rating: {c['compound']} {against}"]
    for block in c["blocks"]:
        figures = []
        for ln in block.lines[:3]:
            est = " est." if ln.method == "estimate" else ""
            figures.append(f"{cap(ln.key, 24)} {ln.text}{est} {ln.rating or '-'}")
        lines.append("; ".join(figures))
    lines += [f"measured: {c['measured_on']}",
              f"spec: {cap(c['spec_name'], 32)} v{c['spec_version']} {c['spec_sha256'][:12] or NA}",
              f"mlee {c['mlee_version']}"]
    return "\n".join(lines)


def check_qr_template(template: str) -> None:
    """Validate a ``--qr-url`` template; raise UsageError naming the bad placeholder."""
    import string

    if not template.strip():
        raise UsageError("--qr-url is empty", "give a URL, or leave the option out for the default summary")
    if len(template) > QR_MAX_CHARS:
        raise UsageError(f"--qr-url is {len(template)} characters long; a QR code holds at most {QR_MAX_CHARS} here",
                         "use a shorter URL")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise UsageError(f"--qr-url template is malformed: {exc}", "write literal braces as {{ and }}") from None
    for f in fields:
        if f not in QR_FIELDS:
            raise UsageError(f"--qr-url: unknown placeholder {{{f}}}",
                             "use one of " + ", ".join("{" + x + "}" for x in QR_FIELDS))


def qr_url(template: str, c: dict[str, Any]) -> str:
    """Fill a checked ``--qr-url`` template with URL-quoted fields of the label."""
    check_qr_template(template)
    values = {"model": c["model"], "env": c["environment"], "task": c["task"], "dataset": c["dataset"],
              "compound": c["compound"], "id": c["record_id"], "spec": c["spec_sha256"][:12],
              "spec_sha256": c["spec_sha256"]}
    url = template.format(**{k: quote(str(v), safe="") for k, v in values.items()})
    if len(url) > QR_MAX_CHARS:
        raise UsageError(f"--qr-url for {c['model']!r} is {len(url)} characters; a QR code holds at most "
                         f"{QR_MAX_CHARS} here", "use fewer or shorter placeholders")
    return url
