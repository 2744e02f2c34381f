"""CLI: ``mlee doctor [--json]``: which power sources this machine offers, why not, and the fix.

Fast on purpose (about a second): codecarbon is found with ``importlib.util.find_spec``, never
imported; RAPL is probed by reading each counter once (twice, 50 ms apart, when there are two
package zones that might mirror one counter); GPUs by one init and one counter check (0.25 s for
NVML, 0.5 s for AMD SMI, one wait for all GPUs of a kind).
"""

from __future__ import annotations

from typing import Any

import typer


def diagnose(country: str | None = None, interval_s: float = 0.1, powercap_root: Any = None,
             nvml: Any = None, amdsmi: Any = None, sleep: Any = None, env: dict[str, str] | None = None,
             clock: Any = None) -> dict:
    """Everything ``mlee doctor`` shows, as a JSON-ready dict (sorted, deterministic).

    The sources are decided by the same functions a run uses (:func:`mlee.monitors.detect.detect_all`);
    ``powercap_root``, ``nvml``, ``amdsmi``, ``sleep``, ``clock`` and ``env`` are the injectable edges.
    """
    import time

    from mlee.vocabulary import Method
    from mlee.monitors.detect import default_method, probe_all
    from mlee.monitors.estimate import codecarbon_available
    from mlee.carbon import resolve_country
    from mlee.monitors.rapl import powercap_root as resolve_root
    from mlee.monitors.sampler import MIN_INTERVAL_S

    code = resolve_country(country)
    probes = probe_all(powercap_root=powercap_root, nvml=nvml, country=code, env=env, amdsmi=amdsmi,
                       sleep=sleep or time.sleep, clock=clock or time.monotonic)
    limits = [p.detail.get("max_interval_s") for p in probes if p.available and p.detail.get("max_interval_s")]
    effective_s = max(MIN_INTERVAL_S, min([interval_s, *limits]))
    components = default_method(probes)
    methods = {k: (v.value if v else None) for k, v in components.items()}
    return {
        "sources": [
            {"name": p.name, "domain": p.domain.value, "method": p.method.value if p.method else None,
             "available": p.available, "reason": p.reason, "fix": p.fix, "detail": p.detail}
            for p in probes
        ],
        "components": methods,
        "estimated": any(v == Method.estimate for v in components.values()),
        "measured": any(v in (Method.counter, Method.power_integration) for v in components.values()),
        "usable": any(v is not None for v in components.values()),
        "interval_s": effective_s,
        "requested_interval_s": interval_s,
        "powercap_root": str(resolve_root(powercap_root)),
        "country": code,
        "codecarbon_installed": codecarbon_available(),
    }


def _detail_note(detail: dict) -> str:
    """What a usable source's detail says that changes its figure: mirror check, counter fallback, MIG."""
    notes = []
    check = detail.get("mirror_check") or {}
    if detail.get("mirrored_by"):
        notes.append(f"mirror check: counted once, {', '.join(detail['mirrored_by'])} is the same counter")
    elif check.get("decision") == "independent":
        notes.append("mirror check: independent counter" + (f" ({check['why']})" if check.get("why") else ""))
    if detail.get("counter_unusable"):
        notes.append(f"power integration: {detail['counter_unusable']}")
    if detail.get("shared"):
        notes.append("shared: the whole GPU of a MIG instance, other instances included")
    return "\n".join(notes)


def _render(report: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    from mlee.console import out

    table = Table(title="Power sources", title_justify="left", show_lines=False)
    for column in ("source", "domain", "method", "status", "reason / fix"):
        table.add_column(column, overflow="fold")
    for s in report["sources"]:
        status = Text("available", style="green") if s["available"] else Text("unavailable", style="yellow")
        why = (s["reason"] or _detail_note(s["detail"])) + (f"\nfix: {s['fix']}" if s["fix"] else "")
        table.add_row(Text(s["name"]), s["domain"], s["method"] or "-", status, Text(why or "-"))
    console = out()
    console.print(table)
    labels = {"counter": "measured (energy counter)", "power_integration": "measured (integrated power)",
              "estimate": "ESTIMATED (codecarbon model)", None: "not measured"}
    for component in ("cpu", "dram", "gpu"):
        console.print(Text(f"{component:5} {labels[report['components'][component]]}"))
    console.print(Text(f"sampling interval: {report['interval_s']:g} s"
                       + (f" (shortened from {report['requested_interval_s']:g} s so counters cannot wrap unseen)"
                          if report["interval_s"] < report["requested_interval_s"] else "")))
    console.print(Text(f"powercap root: {report['powercap_root']}   country: {report['country']}"))
    if not report["usable"]:
        console.print(Text("no usable power source: mlee run would stop with exit code 3", style="bold red"))
    elif report["estimated"]:
        console.print(Text("figures would be estimates where marked; see the fixes above to measure instead"))


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    country: str = typer.Option(None, "--country", help="ISO 3166-1 alpha-3 country for the estimate "
                                "(default: MLEE_COUNTRY or DEU)."),
    interval: float = typer.Option(0.1, "--interval", min=0.0, help="Sampling interval to check, in seconds."),
) -> int:
    """Show every power source: available or not, the reason and the fix, measured or estimated.

    Exit code 0 when at least one source is usable, 3 when none is.
    """
    from mlee.errors import UsageError
    from mlee.fsutil import canonical_json

    if interval <= 0:
        raise UsageError(f"interval {interval:g} s is not positive", fix="use e.g. --interval 0.1")
    report = diagnose(country=country, interval_s=interval)
    if as_json:
        import sys

        sys.stdout.write(canonical_json(report))
    else:
        _render(report)
    return 0 if report["usable"] else 3
