"""Shared test set-up: no network, no real RAPL tree, clean distributed-run variables.

- Every test runs with ``socket.connect`` refused for non-local addresses: a test that would reach
  the network fails loudly instead of passing on a developer's laptop and hanging in CI.
- ``MLEE_POWERCAP_ROOT`` points at an empty folder, so auto-detection behaves the same on a laptop
  with RAPL and on a CI machine without it (tests marked ``hardware`` see the real tree).
- Rank variables (RANK, SLURM_*) are cleared so ``results.json`` ``rank`` is deterministic.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `from fakes import ...`

_RANK_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_JOB_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS")


class NetworkBlocked(RuntimeError):
    """A test tried to open a network connection."""


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise NetworkBlocked(f"test tried to connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise NetworkBlocked(f"test tried to connect to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(autouse=True)
def _isolated_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    for var in _RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("MLEE_COUNTRY", raising=False)
    if request.node.get_closest_marker("hardware") is None:
        empty = tmp_path_factory.mktemp("no-powercap")
        monkeypatch.setenv("MLEE_POWERCAP_ROOT", str(empty))


@pytest.fixture
def clock():
    """A fake monotonic clock (``clock.advance(s)``, ``clock.sleep(s)``)."""
    from fakes.clock import FakeClock

    return FakeClock()
