"""Where the CPU of a throughput phase went (issue 22, target 2): the server's processes, the load
generator, and the rest of the machine — on a shared 2-core machine throughput is CPU per request,
so the split says which part a faster API would have to shrink.

Linux only (``/proc``); elsewhere every figure is ``None``. Counted in seconds of CPU time:

- a process tree: ``utime + stime`` of a process and all its live descendants (gunicorn's master and
  workers);
- this process: ``getrusage(RUSAGE_SELF)`` (every thread of it);
- the machine: the busy time of all cores from ``/proc/stat`` (everything not idle or waiting for
  I/O) — PostgreSQL's backends and whatever else runs (other sessions' tests) are in here.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) ": comm may hold spaces


def tree_cpu(root: int) -> float | None:
    """CPU seconds of ``root`` and every live descendant."""
    if not Path("/proc").is_dir():
        return None
    parent_of, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            # fields[1] is the parent pid; [11], [12] utime and stime in clock ticks
            parent_of[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    total = 0.0
    for pid in cpu:
        walk = pid
        while walk not in (root, 0, 1) and walk in parent_of:
            walk = parent_of[walk]
        if walk == root:
            total += cpu[pid]
    return total


def machine_busy() -> float | None:
    """CPU seconds all cores spent busy since boot."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in first]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / _TICK  # user … steal; guest time is counted in user already


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSample:
    server: float | None
    here: float
    machine: float | None

    @classmethod
    def take(cls, server_pid: int | None) -> CpuSample:
        return cls(tree_cpu(server_pid) if server_pid else None, own_cpu(), machine_busy())

    def since(self, earlier: CpuSample) -> dict[str, float | None]:
        """CPU seconds between two samples: server tree, this process, the rest of the machine."""
        server = None if self.server is None or earlier.server is None else self.server - earlier.server
        here = self.here - earlier.here
        machine = None if self.machine is None or earlier.machine is None else self.machine - earlier.machine
        rest = None if machine is None else machine - here - (server or 0.0)
        return {"server": server, "here": here, "rest": rest, "machine": machine}


def per_request_ms(split: dict[str, float | None], requests: int) -> list[str]:
    """The split as milliseconds of CPU per request, for a table row."""
    return ["-" if split[k] is None else f"{split[k] * 1000 / max(requests, 1):.2f}"
            for k in ("server", "here", "rest", "machine")]
