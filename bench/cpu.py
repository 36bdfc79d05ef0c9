"""Where the CPU went: seconds used by each child process tree of the benchmark (Linux /proc).

Each direct child is a component: the Temporal server, NATS, PostgreSQL with its backends, the
system under test. Exited descendants count through their parent's `cutime`/`cstime`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

GENERATOR = "load generator"
OTHERS = "other processes on the machine"
LABELS = {
    "assistance": "system under test",
    "temporal": "Temporal",
    "postgres": "PostgreSQL",
    "nats-server": "NATS",
    "python": "baseline server",
}


def _stat(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # from field 3 (state) on


def snapshot() -> dict[str, float]:
    """CPU seconds so far, per child process tree (named by the child) and for this process."""
    if not Path("/proc/self/stat").exists():
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    parent: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields is None:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        spent[pid] = sum(int(value) for value in fields[11:15]) / ticks
    out: dict[str, float] = defaultdict(float)
    names: dict[int, str] = {}
    for pid, seconds in spent.items():
        child = _child_of(pid, me, parent)
        if child is None:
            continue
        if child not in names:
            comm = _comm(child)
            names[child] = LABELS.get(comm, comm)
        out[names[child]] += seconds
    times = os.times()
    out[GENERATOR] = times.user + times.system
    busy = _machine_busy(ticks)
    if busy is not None:
        out[OTHERS] = busy - sum(out.values())
    return dict(out)


def _child_of(pid: int, me: int, parent: dict[int, int]) -> int | None:
    """The direct child of `me` that `pid` descends from (itself included), if any."""
    seen = 0
    while pid in parent and seen < 64:
        if parent[pid] == me:
            return pid
        pid, seen = parent[pid], seen + 1
    return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return str(pid)


def _machine_busy(ticks: int) -> float | None:
    """CPU seconds the whole machine spent busy since boot (idle and iowait excluded)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / ticks


def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per component between two snapshots, largest first."""
    spent = {name: max(after[name] - before.get(name, 0.0), 0.0) for name in after}
    return dict(sorted(spent.items(), key=lambda item: -item[1]))
