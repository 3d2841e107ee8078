"""What a new run takes from a stored one (``clew replay``, ``clew shrink``, and ``clew
analyze``'s spec): its own spec, but not what would let a run directory from anyone reach
beyond what the user chose.

A stored run never chooses a suite file (:func:`harness.runner.stored_suite`), nor the
hosts, programs and keys of its cluster (:data:`YOURS_TO_NAME`), nor a state directory
that holds no cluster of clew's, nor the store (the one that holds the run, else
``./store``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.record import RunSpec
from harness.spec import DEFAULT_STORE, TestSpec, stored_spec
from harness.store import store_of_run

__all__ = ["YOURS_TO_NAME", "rerun_spec"]


#: Cluster options that name machines to connect to, programs to run or keys to use: a
#: stored run (which may come from anyone) never chooses them for a new run, as it never
#: chooses a suite file; the user names them again (``--cluster-option``).
YOURS_TO_NAME: dict[str, tuple[str, ...]] = {
    "static": ("hosts", "nodes_file", "user", "port", "key_file", "password_env",
               "known_hosts", "insecure_host_keys"),
    # (a box not installed is fetched from the network; a bridged cluster's image is a
    # directory of VM images to boot)
    "vagrant": ("vagrant", "box", "image"),
    "docker": ("engine", "runtime"),
    "podman": ("engine", "runtime"),
}  # fmt: skip


#: Options that stand for one another (a static provider's nodes: a list, or a file of
#: them): naming one for a new run drops the stored run's other.
_EITHER: dict[str, tuple[str, ...]] = {
    "static": ("hosts", "nodes_file"),
    "vagrant": ("ips", "first_ip"),
}


def _stored_options(fields: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The stored run's cluster options a new run keeps under ``given`` (the user's): all,
    less the alternatives of any option the user named (:data:`_EITHER`)."""
    options = fields.get("cluster_options") or {}
    if not isinstance(options, Mapping):
        return {}
    either = _EITHER.get(str(fields.get("provider") or "local"), ())
    if any(k in given for k in either):
        return {k: v for k, v in options.items() if k not in either}
    return dict(options)


def rerun_spec(
    stored: RunSpec,
    spec_path: str | Path,
    *,
    suite_file: str | None = None,
    store: str | None = None,
    cluster_state_dir: str | None = None,
    cluster_options: Mapping[str, Any] | None = None,
    on_a_cluster: bool = False,
) -> TestSpec:
    """The spec to run a stored run (``stored``, read from ``spec_path``) again with, as
    ``clew replay`` and ``clew shrink`` do (``on_a_cluster``), or to check it again
    (``clew analyze``): its own, validated, with the suite the user named
    (``suite_file``) in place of the stored one (validating a spec may load its suite),
    in the store the user named (default: the store that holds the run, not the one its
    spec names; ``./store`` for a run that is in no store), and on the cluster the user
    named, if any (``cluster_options`` over the stored ones).

    On a cluster, what the stored spec says of the cluster is taken only where it cannot
    reach beyond what the user chose: its state directory only if a cluster of clew's is
    there (whole or half made; or nothing: it is made), and none of :data:`YOURS_TO_NAME` (hosts,
    programs, keys) unless the user names it again: :class:`ConfigError` saying
    which, otherwise."""
    fields = stored.spec_fields()
    if suite_file is not None:
        fields["suite"] = suite_file
    if store is None:  # (a run copied into a home directory is in no store: ./store)
        enclosing = store_of_run(Path(spec_path).parent)
        store = DEFAULT_STORE if enclosing is None else str(enclosing)
    fields["store"] = store
    if on_a_cluster:
        _check_cluster_is_yours(fields, spec_path, cluster_state_dir, cluster_options or {})
    if cluster_state_dir is not None:
        fields["cluster_state_dir"] = cluster_state_dir
    if cluster_options:
        fields["cluster_options"] = {**_stored_options(fields, cluster_options),
                                     **cluster_options}  # fmt: skip
    return stored_spec(fields, str(spec_path))


def _check_cluster_is_yours(
    fields: Mapping[str, Any],
    spec_path: str | Path,
    cluster_state_dir: str | None,
    given: Mapping[str, Any],
) -> None:
    """:class:`ConfigError` if the stored spec ``fields`` would choose, for a new run, a
    cluster state directory clew did not make or an option of :data:`YOURS_TO_NAME` the
    user did not name again (see :func:`rerun_spec`)."""
    from clusters._ledger import LEDGER_FILE
    from clusters.base import CLUSTER_FILE

    stored_dir = fields.get("cluster_state_dir")
    state = Path(stored_dir) if isinstance(stored_dir, str) and stored_dir else None
    # (a directory that is not there is made, holding only clew's files, and removed
    # again; one that is there must be a cluster's, whole or half made: clew writes and
    # removes files in it, and the directory itself once empty: /mnt, say)
    if cluster_state_dir is None and state is not None and (
        state.is_symlink()
        or (state.exists() and not any((state / f).is_file() for f in (CLUSTER_FILE, LEDGER_FILE)))
    ):
        raise ConfigError(
            f"{spec_path}: the run was made on the cluster in {stored_dir}, which holds no "
            f"cluster of clew's ({CLUSTER_FILE}); clew does not use a directory a stored "
            "run names for its cluster: name one with --cluster-state-dir"
        )
    options = _stored_options(fields, given)
    provider = str(fields.get("provider") or "local")
    named = [k for k in YOURS_TO_NAME.get(provider, ()) if k in options and k not in given]
    if named:
        values = ", ".join(f"{k}={options[k]!r}" for k in named)
        flags = " ".join(f"--cluster-option {k}=..." for k in named)
        raise ConfigError(
            f"{spec_path}: the run's {provider} cluster names {values}; clew does not take "
            "the machines, programs or keys a new run uses from a stored run "
            f"(it may come from anyone): name them again with {flags}"
        )
