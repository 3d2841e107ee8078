"""The search's watchdog wakes only for a nearer deadline, and still raises every flag on
time; the etcd-log reader's quick reading of integers and [from to] pairs agrees with EDN."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from checkers.linear.budget import TIMED_OUT, deadline
from harness.formats.edn import parse_line
from harness.formats.porcupine import read_porcupine_etcd


def _wait_for(flag: object, within: float) -> float:
    start = time.monotonic()
    while flag[0] == 0 and time.monotonic() - start < within:  # type: ignore[index]
        time.sleep(0.005)
    return time.monotonic() - start


def test_a_nearer_deadline_added_after_a_far_one_still_fires() -> None:
    with deadline(3600.0) as far, deadline(0.1) as near:
        waited = _wait_for(near, 30.0)
        assert near[0] == TIMED_OUT and waited < 30.0
        assert far[0] == 0


def test_a_later_deadline_added_after_a_near_one_fires_after_it() -> None:
    with deadline(0.05) as first, deadline(0.2) as second:
        _wait_for(second, 30.0)
        assert first[0] == TIMED_OUT and second[0] == TIMED_OUT


def test_a_deadline_of_years_leaves_the_watchdog_alive() -> None:
    import numpy as np

    from checkers.linear.budget import _Watchdog

    # A watchdog of its own: the shared one may already sleep on a nearer deadline.
    watchdog = _Watchdog()
    far, near = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    watchdog.add(time.monotonic() + 1e300, far)
    time.sleep(0.05)  # the thread now sleeps towards the far deadline
    watchdog.add(time.monotonic() + 0.05, near)
    _wait_for(near, 30.0)
    assert near[0] == TIMED_OUT and far[0] == 0


_VALUE = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.tuples(st.integers(-50, 10**20), st.integers(-50, 10**20)).map(lambda p: f"[{p[0]} {p[1]}]"),
    st.sampled_from(["03", "-0", "[1  4]", "[1 4 5]", "[nil 4]", "1N", "[01 2]", "+3"]),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_VALUE, min_size=1, max_size=8))
def test_etcd_values_read_as_the_edn_reader_reads_them(
    values: list[str], tmp_path_factory: object
) -> None:
    path = Path(tmp_path_factory.mktemp("etcd")) / "etcd.log"  # type: ignore[attr-defined]
    lines = []
    for i, v in enumerate(values):
        lines.append(f"INFO  jepsen.util - {i}\t:invoke\t:cas\t{v}")
        lines.append(f"INFO  jepsen.util - {i}\t:ok\t:cas\t{v}")
    path.write_text("\n".join(lines) + "\n")
    expected = [parse_line(v) for v in values]
    if any(len(e) != 1 for e in expected):
        return  # the reader refuses these (tested with the reader's errors)
    h = read_porcupine_etcd(str(path))
    got = [h.value_of(i) for i in range(0, len(h), 2)]
    assert got == [e[0] for e in expected]
    assert [type(g) for g in got] == [type(e[0]) for e in expected]
