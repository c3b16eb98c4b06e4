"""Mitigation policies: the registry (``spec``) and the mechanisms the kernel model runs."""
