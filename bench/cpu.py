"""Where the CPU went: seconds used by each child process tree of the benchmark (Linux /proc);
and the resident memory of a process tree.

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
    stats = _processes()
    parent = {pid: int(fields[1]) for pid, fields in stats.items()}
    spent = {
        pid: sum(int(value) for value in fields[11:15]) / ticks for pid, fields in stats.items()
    }
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


def _processes() -> dict[int, list[str]]:
    """Every process's /proc stat fields, from field 3 (state) on."""
    out: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None:
            out[int(entry.name)] = fields
    return out


def children_named(comm: str) -> list[int]:
    """This process's direct children whose command is `comm` (e.g. "temporal")."""
    me = os.getpid()
    return [
        pid for pid, fields in _processes().items() if int(fields[1]) == me and _comm(pid) == comm
    ]


def resident_bytes(root: int) -> int:
    """Resident memory (VmRSS) of `root` and its descendants, summed; 0 once they are gone."""
    parent = {pid: int(fields[1]) for pid, fields in _processes().items()}
    total = 0
    for pid in parent:
        seen, at = 0, pid
        while at != root and at in parent and seen < 64:
            at, seen = parent[at], seen + 1
        if at == root:
            total += _vm_rss(pid)
    return total


def _vm_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


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
