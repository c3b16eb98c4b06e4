"""``lpmsim advise``: which settings or ``lpmsim guard`` policy to use on a partition about to be
migrated, with the risk on both sides (docs/advise.md).

``facts`` (what is known about the partition), ``candidates`` (what its kernel can be told to do),
``compact`` (the compact comparison), ``recommend`` (the rule and the sensitivity), ``deploy`` (the
guard configuration or sysctl lines), ``pattern`` and ``fit`` (advice from a real log: approximate
Bayesian computation of the platform figures), ``results`` (typed results), ``render`` (the tables).
"""
