"""The discrete-event core: an environment, events and processes (after SimPy's core), and RNG streams."""

from lpmsim.engine.core import Environment, Event, Process, Timeout
from lpmsim.engine.rng import RngStreams

__all__ = ["Environment", "Event", "Process", "RngStreams", "Timeout"]
