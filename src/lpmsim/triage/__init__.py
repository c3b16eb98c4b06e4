"""``lpmsim triage``: read a real kernel log and say what fired, where, in which migration phase, and why."""

from lpmsim.triage.analyze import triage_file, triage_text
from lpmsim.triage.events import Bound, Event, Phase, Triage

__all__ = ["Bound", "Event", "Phase", "Triage", "triage_file", "triage_text"]
