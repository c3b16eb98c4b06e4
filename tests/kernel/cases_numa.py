"""Hand-computed cases of the NUMA node in the workqueue lockup message (issue 13, section 7).

kernel/workqueue.c ``pr_cont_pool_info()`` prints ``node=%d`` = ``pool->node`` = ``cpu_to_node(cpu)``
for a per-CPU pool.  Topology (lpmsim.hypervisor.topology): CPU c is on core c // smt; K cores over
N nodes in contiguous blocks, core k on node k * N // K.

Timing as cases.py's ``wq_lockup``: a CPU that cannot schedule from 100.5 is reported by the runs at
150.40 (stuck for 49s) and 180.48 (79s).
"""

from __future__ import annotations

from .cases import INF, Case, s
from .harness import BASE, merge

NO_RCU = {"rcu_cpu_stall_suppress": 1}
WQ = {"workqueue_lockup"}
# 16 vCPUs at SMT4 = 4 cores over 2 nodes: cores 0-1 (CPUs 0-7) node 0, cores 2-3 (CPUs 8-15) node 1.
TWO_NODES = merge(BASE, {"partition": {"vcpus": 16, "smt": 4, "numa_nodes": 2}})
# 12 vCPUs at SMT2 = 6 cores over 3 nodes: core k on node k * 3 // 6 = k // 2 (CPUs 4k..4k+3 on node k).
THREE_NODES = merge(BASE, {"partition": {"vcpus": 12, "smt": 2, "numa_nodes": 3}})

# fmt: off
CASES: list[Case] = [
    Case(
        # CPU 7 is thread 3 of core 1 (node 0), CPU 8 thread 0 of core 2 (node 1): the two sides of
        # the node boundary, both stuck from 100.5.  Pools reported in CPU order at each run.
        "wq_lockup_numa_boundary",
        {"kernel": NO_RCU, "sim": {"max_time_s": 190},
         "script": [s(7, 100.5, "preempt_off", INF), s(8, 100.5, "preempt_off", INF)]},
        WQ,
        [
            (150.40, "workqueue_lockup", "lockup", [7], 0, "BUG: workqueue lockup - pool cpus=7 node=0 flags=0x0 nice=0 stuck for 49s!"),
            (150.40, "workqueue_lockup", "lockup", [8], 0, "BUG: workqueue lockup - pool cpus=8 node=1 flags=0x0 nice=0 stuck for 49s!"),
            (180.48, "workqueue_lockup", "lockup", [7], 0, "BUG: workqueue lockup - pool cpus=7 node=0 flags=0x0 nice=0 stuck for 79s!"),
            (180.48, "workqueue_lockup", "lockup", [8], 0, "BUG: workqueue lockup - pool cpus=8 node=1 flags=0x0 nice=0 stuck for 79s!"),
        ],
        base=TWO_NODES,
    ),
    Case(
        # CPU 11 = core 5 (SMT2) -> node 5 * 3 // 6 = 2.
        "wq_lockup_numa_three_nodes",
        {"kernel": NO_RCU, "sim": {"max_time_s": 160}, "script": [s(11, 100.5, "preempt_off", INF)]},
        WQ,
        [(150.40, "workqueue_lockup", "lockup", [11], 0, "BUG: workqueue lockup - pool cpus=11 node=2 flags=0x0 nice=0 stuck for 49s!")],
        base=THREE_NODES,
    ),
]
# fmt: on
