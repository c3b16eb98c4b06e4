"""The partition's processor topology as the hypervisor presents it: cores, SMT threads, NUMA nodes.

PowerVM tells the guest where each virtual processor is through the ``ibm,associativity`` property
of its device-tree node (arch/powerpc/mm/numa.c ``numa_setup_cpu`` -> ``vphn_get_nid`` /
``of_node_to_nid_single``: the node is the associativity domain at ``min_common_depth``).  The
property belongs to the virtual processor (the core), so every SMT thread of a core is on the
core's node.  Linux numbers the threads of a core consecutively (``cpu_first_thread_sibling(cpu)
= cpu & ~(threads_per_core - 1)``): logical CPU ``c`` is thread ``c % smt`` of core ``c // smt``.

ASSUMPTION: the cores are spread over ``numa_nodes`` nodes in contiguous blocks as equal as possible
(core ``k`` of ``K`` on node ``k * numa_nodes // K``), numbered 0..numa_nodes-1.  What PowerVM
actually assigns depends on where the partition's processors were placed on the server (and may
differ after a migration; the kernel keeps its boot-time ``cpu_to_node()`` for the per-CPU
workqueue pools, kernel/workqueue.c ``workqueue_init``).
"""

from __future__ import annotations


def cores(vcpus: int, smt: int) -> int:
    """Virtual processors (cores) holding ``vcpus`` Linux CPUs at ``smt`` threads per core (a last,
    partly populated core counts)."""
    return -(-vcpus // smt)


def cpu_to_node(cpu: int, vcpus: int, smt: int, numa_nodes: int) -> int:
    """The NUMA node of Linux CPU ``cpu`` (``cpu_to_node()``): its core's, cores in contiguous blocks."""
    if not 0 <= cpu < vcpus:
        raise ValueError(f"CPU {cpu} does not exist ({vcpus} CPUs)")
    return (cpu // smt) * numa_nodes // cores(vcpus, smt)


def cpu_nodes(vcpus: int, smt: int, numa_nodes: int) -> tuple[int, ...]:
    """``cpu_to_node()`` of every CPU, by CPU number."""
    return tuple(cpu_to_node(c, vcpus, smt, numa_nodes) for c in range(vcpus))
