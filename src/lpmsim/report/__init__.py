"""Offline HTML reports: ``lpmsim report DIR`` (a run, a comparison, a sweep) and
``lpmsim triage LOG --html FILE`` (docs/report.md)."""
