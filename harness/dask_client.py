"""One way to reach Dask for clew: the scheduler at an address, or a local cluster of
worker processes on loopback. Used by checks (:mod:`harness.check_dask`) and campaigns
(:mod:`harness.campaign_dask`), which add what their units need."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from harness.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

__all__ = ["open_dask_client"]


@contextlib.contextmanager
def open_dask_client(
    *, address: str | None, workers: int, timeout: float
) -> Iterator[tuple[Client, LocalCluster | None]]:
    """A client of the scheduler at ``address``, or of a new local cluster of ``workers``
    processes (one thread each; scheduler, workers and dashboard on 127.0.0.1), with the
    local cluster (None for an address); both closed at the end. :class:`ConfigError`
    unless exactly one of the two is given, :class:`ClusterError` if the address does not
    answer within ``timeout`` seconds."""
    from distributed import Client, LocalCluster

    if (address is None) == (workers < 1):
        raise ConfigError("give either a Dask scheduler address or a number of local "
                          "workers (>= 1), not both")  # fmt: skip
    # A worker still busy with a cancelled unit is killed at the end: expected, not news.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = None
    if address is None:
        # Our own worker processes log nothing: a unit's failure comes back through its
        # future, and at close a worker's heartbeat can race the scheduler's shutdown and
        # log a traceback at ERROR that means nothing to the user.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               silence_logs=logging.CRITICAL)  # fmt: skip
        client = Client(cluster, timeout=timeout)
    else:
        try:
            client = Client(address, timeout=timeout)
        except OSError as e:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        yield client, cluster
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
