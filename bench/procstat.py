"""Process CPU and memory from /proc (Linux), read from outside the measured process.

`ProcSample.read(pid)` raises `ProcessGone` when the process has exited; CPU is user + system
time of the process itself (threads included, children not). `ProcSample.read_tree(pid)` is the
process and all its descendants (the server and its scrape workers): CPU of every live process plus
what the reaped children used (`cutime`/`cstime` of their parents), RSS and PSS summed. PSS
(`/proc/<pid>/smaps_rollup`) divides each shared page among the processes mapping it, so the sum
is the memory the tree really holds; summed RSS counts shared pages once per process.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class ProcessGone(RuntimeError):
    """The process to sample no longer exists."""


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading: monotonic wall time, CPU seconds so far, RSS and peak RSS (MiB); for a tree,
    the sums, PSS, and the number of processes."""

    wall: float
    cpu_s: float
    rss_mib: float
    hwm_mib: float
    pss_mib: float = 0.0
    processes: int = 1
    pss_by_process: tuple[float, ...] = ()
    """PSS of each process of a tree (MiB), the root first, then by pid."""

    @classmethod
    def read_tree(cls, pid: int) -> ProcSample:
        """`pid` and every descendant (scanned from /proc); raises `ProcessGone` if `pid` exited."""
        root = cls.read(pid)
        children: dict[int, list[int]] = {}
        reaped = 0.0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        tree, queue = [], [pid]
        while queue:
            current = queue.pop()
            tree.append(current)
            queue.extend(children.get(current, ()))
        cpu = rss = hwm = pss = 0.0
        count = 0
        each: list[float] = []
        for member in [pid, *sorted(tree[1:])]:
            try:
                sample = root if member == pid else cls.read(member)
                reaped += _reaped_children_cpu(member)
                own = _pss_mib(member)
            except (ProcessGone, OSError):
                continue
            pss += own
            each.append(round(own, 1))
            count += 1
            cpu += sample.cpu_s
            rss += sample.rss_mib
            hwm += sample.hwm_mib
        return cls(root.wall, cpu + reaped, rss, hwm, pss, count, tuple(each))

    @classmethod
    def read(cls, pid: int) -> ProcSample:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{pid}/status", "rb") as f:
                status = f.read().decode()
        except (FileNotFoundError, ProcessLookupError) as exc:
            raise ProcessGone(f"process {pid} has exited") from exc
        # Fields after the parenthesised command name (which may contain spaces): utime is the
        # 14th field overall, i.e. index 11 after ") ".
        fields = stat[stat.rindex(b")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        rss = hwm = 0.0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
        return cls(time.monotonic(), cpu, rss, hwm)

    @classmethod
    def self(cls) -> ProcSample:
        """This process, from getrusage (peak RSS only: ru_maxrss)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peak = usage.ru_maxrss / 1024
        return cls(time.monotonic(), usage.ru_utime + usage.ru_stime, peak, peak)


def _reaped_children_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / _CLK_TCK


def _pss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
        for line in f:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def machine_busy_s() -> tuple[float, float]:
    """(monotonic wall, CPU seconds all cores spent busy since boot) from /proc/stat.

    The difference between two readings, minus the measured processes' CPU, is what everything
    else on the machine used meanwhile (other jobs disturb latency and cycle times)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return time.monotonic(), (sum(fields[:8]) - idle) / _CLK_TCK


def machine_steal_s() -> float:
    """CPU seconds all cores lost to steal since boot (a virtual machine's vCPUs waiting for the
    host): a stall of every process at once, which no process's own figures show."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return int(fields[7]) / _CLK_TCK if len(fields) > 7 else 0.0


def run_queue_s(pid: int) -> tuple[float, float]:
    """(CPU seconds, seconds spent runnable but waiting for a CPU) of all of `pid`'s threads since
    they started (`/proc/<pid>/task/*/schedstat`; for our serving process nearly all of it is the
    event loop's thread). The wait is time it had work (a request) and the machine gave it no
    CPU, which no event-loop measurement sees. (0, 0) where the kernel keeps no schedstats."""
    on_cpu = waiting = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                run, wait, _ = f.read().split()
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        on_cpu += int(run)
        waiting += int(wait)
    return on_cpu / 1e9, waiting / 1e9


def cores(a: ProcSample, b: ProcSample) -> float:
    """Average cores used between two samples of the same process."""
    wall = b.wall - a.wall
    return (b.cpu_s - a.cpu_s) / wall if wall > 0 else 0.0


def raise_nofile_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit (children inherit it).

    Every simulated kubelet holds a listening socket plus one accepted connection, and the
    server one client connection per node: 5000 nodes need > 10,000 descriptors in the
    simulator. Returns the (soft, hard) limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)
