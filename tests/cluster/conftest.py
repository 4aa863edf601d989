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


def kill_for_good(actor) -> None:
    """Kill a shard actor without restart and return once Ray reports it dead. ``ray.kill`` only
    asks for the kill: a call made right after it can still be served by the live actor, and a
    test that expects the shard to be missing would then see it answer. So the actor is pinged,
    each ping waited for, until a ping fails: no clock decides, and a kill that never took would
    hang into the suite's per-test timeout (pytest-timeout) rather than pass."""
    import ray
    from ray.exceptions import RayActorError

    ray.kill(actor, no_restart=True)
    while True:
        try:
            ray.get(actor.ping.remote())
        except RayActorError:
            return
