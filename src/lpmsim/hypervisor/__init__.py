"""The platform half of the model: how memory moves from the source to the destination server.

* ``layout``   — regions, page ranges, touch/write propensities, skew buckets;
* ``precopy``  — pre-copy rounds and the stop rule (VASI ``enabled``), the set missing at resume;
* ``link``     — the post-copy link: background push and demand requests sharing one queue;
* ``exact``    — page-exact post-copy state (a page-state array) and fault service;
* ``fluid``    — aggregate post-copy state (missing counts per bucket) for very large partitions;
* ``vasi``     — the VASI stream states the guest polls.
"""
