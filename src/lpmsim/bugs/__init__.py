"""Ground truth: real kernel bugs injected into the guest, and the detector reports attributed to them.

``config`` (the scenario's ``bugs`` section) is imported by the scenario schema, so this package
imports nothing at load time; ``inject`` and ``attribution`` are imported where they are used.
"""
