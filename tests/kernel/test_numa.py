"""The partition's NUMA topology (lpmsim.hypervisor.topology) and its scenario fields."""

from __future__ import annotations

import pytest

from lpmsim.config.loader import ScenarioError, build_scenario
from lpmsim.hypervisor.topology import cores, cpu_nodes, cpu_to_node


def test_one_node_is_node_zero() -> None:
    assert cpu_nodes(16, 8, 1) == (0,) * 16


def test_threads_of_a_core_share_its_node() -> None:
    # 32 CPUs at SMT8 = 4 cores over 2 nodes: CPUs 0-15 node 0, 16-31 node 1
    assert cpu_nodes(32, 8, 2) == (0,) * 16 + (1,) * 16
    # 16 CPUs at SMT4 over 4 nodes: one core per node
    assert cpu_nodes(16, 4, 4) == (0,) * 4 + (1,) * 4 + (2,) * 4 + (3,) * 4


def test_uneven_blocks_and_a_partial_core() -> None:
    # 4 cores over 3 nodes: core k on k * 3 // 4 -> 0, 0, 1, 2
    assert cpu_nodes(8, 2, 3) == (0, 0, 0, 0, 1, 1, 2, 2)
    # 10 CPUs at SMT4: 3 cores, the last with 2 threads; over 3 nodes one each
    assert cores(10, 4) == 3
    assert cpu_nodes(10, 4, 3) == (0, 0, 0, 0, 1, 1, 1, 1, 2, 2)


def test_cpu_out_of_range() -> None:
    with pytest.raises(ValueError, match="CPU 16 does not exist"):
        cpu_to_node(16, 16, 8, 1)


def test_scenario_defaults_keep_one_node() -> None:
    p = build_scenario({}).partition
    assert (p.smt, p.numa_nodes) == (8, 1)


def test_more_nodes_than_cores_is_refused() -> None:
    with pytest.raises(
        ScenarioError, match=r"partition\.numa_nodes: 3 nodes for 2 cores \(16 vCPUs at SMT8\)"
    ):
        build_scenario({"partition": {"vcpus": 16, "numa_nodes": 3}})
    assert build_scenario({"partition": {"vcpus": 16, "smt": 4, "numa_nodes": 3}}).partition.numa_nodes == 3
