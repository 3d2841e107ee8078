"""One way to reach Dask for clew: the scheduler at an address, or a local cluster of
worker processes on loopback. Used by checks (:mod:`harness.check_dask`) and campaigns
(:mod:`harness.campaign_dask`), which add what their units need."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from harness.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

__all__ = ["open_dask_client"]

log = logging.getLogger("clew")


@contextlib.contextmanager
def open_dask_client(
    *, address: str | None, workers: int, timeout: float
) -> Iterator[tuple[Client, LocalCluster | None]]:
    """A client of the scheduler at ``address``, or of a new local cluster of ``workers``
    processes (one thread each; scheduler, workers and dashboard on 127.0.0.1), with the
    local cluster (None for an address); both closed at the end. :class:`ConfigError`
    unless exactly one of the two is given, if ``address`` is not a scheduler's address,
    or if no scheduler answers there within ``timeout`` seconds."""
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
        client = _connect(address, timeout)
    try:
        yield client, cluster
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: Seconds of waiting for a scheduler before saying so (one that answers says nothing).
_NOTICE_AFTER = 3.0


def _connect(address: str, timeout: float) -> Client:
    """A client of the scheduler at ``address``; :class:`ConfigError` naming the address if
    it is not one (bad form, unknown scheme, a host that does not resolve, a bad port) or
    no scheduler answers there within ``timeout`` seconds, said after :data:`_NOTICE_AFTER`."""
    from distributed import Client
    from distributed.comm import get_address_host_port, resolve_address

    hint = "give e.g. tcp://10.0.0.5:8786"
    try:
        resolve_address(address)
    except (ValueError, OSError) as e:  # OSError: a host name that does not resolve
        raise ConfigError(
            f"--dask {address!r} is not a Dask scheduler address: {e}; {hint}"
        ) from None
    try:
        _, port = get_address_host_port(address)
    except ValueError:  # a scheme without ports (inproc://)
        port = 1
    if not 0 < port < 65536:
        raise ConfigError(f"--dask {address!r}: port {port} is not 1 to 65535; {hint}")
    notice = threading.Timer(
        _NOTICE_AFTER,
        log.warning,
        (f"waiting up to {timeout:.0f} s for the Dask scheduler at {address} to answer",),
    )
    notice.daemon = True
    notice.start()
    try:
        return Client(address, timeout=timeout)
    except (OSError, ValueError, TypeError) as e:  # TypeError: tls:// without TLS settings
        raise ConfigError(
            f"--dask {address!r}: cannot connect to a Dask scheduler there ({e}); is it "
            "running, and is the address right?"
        ) from None
    finally:
        notice.cancel()
