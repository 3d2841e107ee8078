"""Where nodes come from: local network namespaces, static SSH hosts, Vagrant, containers.

Each provider lives in ``clusters.<name>`` and implements :class:`clusters.base.Provider`;
:func:`get_provider` finds one by name. The data they share (nodes, clusters,
capabilities) is in :mod:`clusters.base`.
"""

from __future__ import annotations

import importlib

from clusters.base import (
    Capability,
    Cluster,
    ClusterSpec,
    ClusterStatus,
    Node,
    Provider,
    default_state_dir,
)
from harness.errors import ConfigError

__all__ = [
    "PROVIDERS",
    "Capability",
    "Cluster",
    "ClusterSpec",
    "ClusterStatus",
    "Node",
    "Provider",
    "default_state_dir",
    "get_provider",
]

#: Provider name -> "module:class". Imported on demand, so a provider's dependencies are
#: only needed when it is used.
PROVIDERS = {
    "local": "clusters.local:LocalProvider",
    "static": "clusters.static:StaticProvider",
    "vagrant": "clusters.vagrant:VagrantProvider",
    "docker": "clusters.docker:DockerProvider",
    "podman": "clusters.docker:PodmanProvider",
    "qemu": "clusters.qemu:QemuProvider",
}


def get_provider(name: str) -> Provider:
    """A new instance of the provider called ``name``; :class:`ConfigError` otherwise."""
    target = PROVIDERS.get(name)
    if target is None:
        choices = ", ".join(PROVIDERS)
        raise ConfigError(f"unknown cluster provider {name!r}; choose one of {choices}")
    module, cls = target.split(":")
    provider: Provider = getattr(importlib.import_module(module), cls)()
    return provider
