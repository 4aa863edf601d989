"""One small Ray cluster of two nodes on this machine for the whole test session (started on first
use, shut down at the end): a head and a worker node, one CPU each, so that shards spread over
more than one node and a node can be killed."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_nodes():
    """The :class:`~biostation.identify.ray_backend.LocalCluster` (None when joined to a cluster
    started elsewhere)."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # someone else's cluster: use it, leave it running
        yield None
        return
    from biostation.identify.ray_backend import LocalCluster

    cluster = LocalCluster(nodes=2, cpus=1)
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def ray_cluster(ray_nodes):
    """The ``ray`` module, connected to the session's cluster."""
    import ray

    yield ray
