"""Power measurement: one module per vendor behind the small :class:`~mlee.monitors.base.PowerSource` protocol."""
