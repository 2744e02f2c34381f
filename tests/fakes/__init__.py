"""Test doubles for hardware and time: a powercap tree builder, a fake NVML, a fake clock."""
