"""Recorded traces under ``tests/data/traces``: written by mlee's own session and trace writer on the fake machine.

Run ``python tests/trace_recordings.py`` from the repository root to write them again (after a deliberate change
of the trace format); ``tests/test_trace_recordings.py`` replays them through every trace reader and checks
that today's writer still writes the same bytes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "traces"
#: The source traces of the fake machine's session (host.csv holds psutil figures of the real machine: left out).
SOURCES = ("rapl_package-0.csv", "rapl_package-0-dram.csv", "nvml_0.csv")
#: The recorded session: 4 measured windows of 1 s, 0.25 s apart; the fake machine draws 40 W package, 5 W dram,
#: 200 W GPU. Units: seconds.
WINDOWS, WINDOW_S, GAP_S = 4, 1.0, 0.25


def record(tmp: Path) -> Path:
    """Run the recorded session on a fresh fake machine under ``tmp``; its experiment folder."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from fakes.clock import FakeClock
    from fakes.machine import fake_machine
    from mlee.measure.session import Measurement

    clock = FakeClock()
    machine = fake_machine(tmp, clock)
    m = Measurement("recorded", output_dir=tmp / "results", powercap_root=machine.root, nvml=machine.nvml,
                    clock=machine.clock, sleep=machine.clock.sleep, background=False, interval_s=0.5, country="DEU")
    with m:
        for i in range(WINDOWS):
            with m.window(f"repeat-{i}", measured=True, n_samples=8):
                clock.advance(WINDOW_S)
            clock.advance(GAP_S)
    assert m.result.folder is not None
    return m.result.folder


def torn(text: str) -> str:
    """A trace as a kill leaves it: the last row cut inside its cells, before its line end."""
    return text[:text.rstrip("\n").rfind(",")]


def write_recordings(tmp: Path) -> None:
    """Write ``tests/data/traces``: the recorded session's source traces, and a torn copy of the GPU trace."""
    folder = record(tmp)
    shutil.rmtree(DATA, ignore_errors=True)
    (DATA / "session").mkdir(parents=True)
    (DATA / "torn").mkdir()
    for name in SOURCES:
        shutil.copyfile(folder / "power" / name, DATA / "session" / name)
    text = (folder / "power" / "nvml_0.csv").read_text(encoding="utf-8")
    (DATA / "torn" / "nvml_0.csv").write_text(torn(text), encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp_dir:
        write_recordings(Path(tmp_dir))
    print(f"wrote {DATA}")
