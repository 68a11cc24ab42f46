#!/usr/bin/env python3
"""pi-hil on-device agent. Python 3.7+, standard library only.

    monitor.py start  --workdir W --deadline-s N [--interval-ms 50] [--probe FILE]
                      [--no-facts] [--standin DESC] -- ARGV...
    monitor.py attach --workdir W [--offset BYTES]
    monitor.py kill   --workdir W
    monitor.py facts  [--standin DESC]

`start` detaches a worker (double fork + setsid) so that a dropped SSH session
does not take the job with it. The worker appends JSON events, one per line, to
W/.hil/events.jsonl; `start` and `attach` copy that file to stdout from a byte
offset until the `end` event, so a controller that lost its connection
re-attaches and reads on where it stopped. The worker itself enforces the
deadline, so it holds with the controller gone.
"""
import errno
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

PROTOCOL = 1
STATE = ".hil"
TAIL_BYTES = 8192
LOG_CAP = 16 * 1024 * 1024
# Window before the deadline over which fault rate and PSI are judged.
PRESSURE_WINDOW_MS = 5000
# VmHWM, fault counters and PSI are read at most this often (see Worker.sample).
SLOW_MS = 200

# The launcher is a fresh, small interpreter (-S: no site). It forks the
# payload into its own process group and reports the wait4 status and rusage.
# Its child inherits only the launcher's small high-water mark across fork and
# exec, not the worker's (the ru_maxrss trap).
LAUNCHER = r"""
import os, sys
ctl = int(sys.argv[1]); argv = sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.setpgid(0, 0)
        os.execvp(argv[0], argv)
    except BaseException as e:
        os.write(2, ("hil launcher: cannot exec %r: %s\n" % (argv[0], e)).encode())
    os._exit(127)
try:
    os.setpgid(pid, pid)
except OSError:
    pass
os.write(ctl, ("P %d\n" % pid).encode())
while True:
    try:
        _, status, ru = os.wait4(pid, 0)
        break
    except InterruptedError:
        pass
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
os.write(ctl, ("X %d %d %d %d %d %d\n" % (code, sig, ru.ru_maxrss,
    int(ru.ru_utime * 1000), int(ru.ru_stime * 1000), ru.ru_majflt)).encode())
"""


def mono_ms():
    return time.monotonic() * 1000.0


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def run_cmd(argv, timeout=5.0):
    """(returncode, stdout, stderr); returncode None when the tool is missing."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        return None, "", str(e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def signame(num):
    try:
        return signal.Signals(num).name[3:]
    except ValueError:
        return str(num)


class ProcFile(object):
    """A /proc or cgroup file kept open and re-read with pread(0): no
    open/close per sample, which keeps 50 ms sampling cheap."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)

    def read(self):
        try:
            return os.pread(self.fd, 65536, 0)
        except OSError as e:
            if e.errno == errno.ESPIPE:
                with open(self.path, "rb") as f:
                    return f.read()
            raise

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass


def open_or_none(path):
    try:
        return ProcFile(path)
    except OSError:
        return None


def field_kb(data, key):
    """`Key:   1234 kB` from a /proc status-like buffer, in KiB."""
    i = data.find(key)
    if i < 0:
        return None
    j = i + len(key)
    m = re.match(rb"[:\s]+(\d+)", data[j:j + 40])
    return int(m.group(1)) if m else None


def kb_after(buf, key):
    """The integer after `key` (e.g. b"VmHWM:" in "VmHWM:   1234 kB"), 0 if absent."""
    i = buf.find(key)
    if i < 0:
        return 0
    i += len(key)
    j = i
    n = len(buf)
    while j < n and buf[j] in b" \t":
        j += 1
    k = j
    while k < n and 48 <= buf[k] <= 57:
        k += 1
    return int(buf[j:k]) if k > j else 0


def vmstat_field(data, key):
    m = re.search(rb"(?:^|\n)" + key + rb" (\d+)", data)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------- cgroups

def parse_mountinfo():
    mounts = []
    text = read_text("/proc/self/mountinfo") or ""
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf = left.split()
        rf = right.split()
        if len(lf) < 5 or len(rf) < 3:
            continue
        mounts.append({"root": lf[3], "point": lf[4], "fstype": rf[0], "super": rf[2].split(",")})
    return mounts


def join_cgroup(mount, path):
    root = mount["root"]
    if root != "/" and path.startswith(root):
        path = path[len(root):]
    return mount["point"].rstrip("/") + "/" + path.lstrip("/")


def find_memcg():
    """(version, dir) of this process's memory cgroup, or (None, why)."""
    own = read_text("/proc/self/cgroup") or ""
    mounts = parse_mountinfo()
    v1path = v2path = None
    for line in own.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2path = parts[2]
        elif "memory" in parts[1].split(","):
            v1path = parts[2]
    if v2path is not None:
        for m in mounts:
            if m["fstype"] == "cgroup2":
                d = join_cgroup(m, v2path)
                if os.path.exists(os.path.join(d, "memory.current")):
                    return "v2", d
    if v1path is not None:
        for m in mounts:
            if m["fstype"] == "cgroup" and "memory" in m["super"]:
                d = join_cgroup(m, v1path)
                if os.path.exists(os.path.join(d, "memory.usage_in_bytes")):
                    return "v1", d
    return None, "no memory cgroup (controller disabled or not mounted)"


def memory_cgroup_kind():
    for m in parse_mountinfo():
        if m["fstype"] == "cgroup2":
            ctl = read_text(os.path.join(m["point"], "cgroup.controllers")) or ""
            if "memory" in ctl.split():
                return "v2"
    enabled = False
    for line in (read_text("/proc/cgroups") or "").splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] == "memory":
            enabled = f[3] == "1"
    if enabled and any(m["fstype"] == "cgroup" and "memory" in m["super"] for m in parse_mountinfo()):
        return "v1"
    return "none"


def cgroup_oom_kills(kind, d):
    if kind == "v2":
        text = read_text(os.path.join(d, "memory.events"))
    else:
        text = read_text(os.path.join(d, "memory.oom_control"))
    if text is None:
        return None
    m = re.search(r"(?m)^oom_kill (\d+)", text)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------- facts

CPU_PARTS = {
    "0xb76": "ARM1176", "0xc07": "Cortex-A7", "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76",
}
DISTS = {
    "numpy": ["numpy"],
    "tensorflow": ["tensorflow", "tensorflow-cpu", "tensorflow-aarch64", "tensorflow-intel",
                   "tf-nightly", "tensorflow-rocm", "intel-tensorflow"],
    "tflite_runtime": ["tflite-runtime", "tflite_runtime"],
    "ai_edge_litert": ["ai-edge-litert", "ai-edge-litert-nightly"],
    "pyarmnn": ["pyarmnn"],
}


def module_version(mod):
    """Version of a module WITHOUT importing it (importing TF costs ~500 MB)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec(mod)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "absent"
    try:
        import importlib.metadata as md
        for dist in DISTS.get(mod, [mod]):
            try:
                return md.version(dist)
            except md.PackageNotFoundError:
                pass
    except ImportError:  # Python 3.7: look for dist-info / egg-info beside it
        where = list(spec.submodule_search_locations or [])
        for loc in where:
            parent = os.path.dirname(loc)
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            for dist in DISTS.get(mod, [mod]):
                pre = dist.replace("-", "_").lower() + "-"
                for n in names:
                    if n.lower().replace("-", "_", 1).startswith(pre) and n.endswith((".dist-info", ".egg-info")):
                        return n[len(pre):].rsplit(".", 1)[0].split("-")[0]
    # Debian packages may ship neither: read __version__ from the source.
    for loc in list(spec.submodule_search_locations or []):
        for fn in ("_version.py", "version.py", "__init__.py"):
            text = read_text(os.path.join(loc, fn)) or ""
            m = re.search(r"""(?m)^(?:__version__|version)\s*=\s*['"]([^'"]+)['"]""", text)
            if m:
                return m.group(1)
    return "present (version unknown)"


def detect_emulation():
    compat = (read_text("/proc/device-tree/compatible") or "").replace("\0", " ").strip()
    if "linux,dummy-virt" in compat or "qemu" in compat.lower():
        return True, "device-tree compatible " + compat
    rc, out, _ = run_cmd(["systemd-detect-virt"])
    if rc == 0 and out.strip() and out.strip() != "none":
        return True, "systemd-detect-virt " + out.strip()
    for f in ("sys_vendor", "product_name"):
        v = (read_text("/sys/class/dmi/id/" + f) or "").strip()
        if re.search(r"QEMU|KVM|VMware|VirtualBox|Xen|Bochs|Firecracker", v, re.I):
            return True, "DMI " + f + " " + v
    cpuinfo = read_text("/proc/cpuinfo") or ""
    if re.search(r"(?m)^flags\s*:.*\bhypervisor\b", cpuinfo):
        return True, "cpuinfo hypervisor flag"
    return False, None


def gather_facts(standin=None):
    u = os.uname()
    meminfo = (read_text("/proc/meminfo") or "").encode()
    model = read_text("/proc/device-tree/model")
    model = model.replace("\0", "").strip() if model else None
    rc, out, _ = run_cmd(["getconf", "LONG_BIT"])
    long_bit = int(out.strip()) if rc == 0 and out.strip() in ("32", "64") else None
    rc, out, _ = run_cmd(["dpkg", "--print-architecture"])
    dpkg = out.strip() if rc == 0 and out.strip() else None
    dr = (read_text("/proc/sys/kernel/dmesg_restrict") or "").strip()
    cpuinfo = read_text("/proc/cpuinfo") or ""
    cpu = None
    m = re.search(r"(?m)^model name\s*:\s*(.+)$", cpuinfo)
    if m:
        cpu = m.group(1).strip()
    else:
        m = re.search(r"(?m)^CPU part\s*:\s*(0x[0-9a-f]+)", cpuinfo)
        if m:
            cpu = CPU_PARTS.get(m.group(1), "ARM part " + m.group(1))
    rc, out, _ = run_cmd(["vcgencmd", "get_throttled"])
    throttled = out.strip() if rc == 0 else None
    if standin:
        emulated, how = True, "local capped host: " + standin
    else:
        emulated, how = detect_emulation()
    versions = {"python": "%d.%d.%d" % tuple(sys.version_info[:3])}
    for mod in ("numpy", "tensorflow", "tflite_runtime", "ai_edge_litert", "pyarmnn"):
        versions[mod] = module_version(mod)
    return {
        "model": model or None,
        "machine": u.machine,
        "longBit": long_bit,
        "dpkgArch": dpkg,
        "kernel": u.release,
        "ramMb": (field_kb(meminfo, b"MemTotal") or 0) // 1024,
        "swapMb": (field_kb(meminfo, b"SwapTotal") or 0) // 1024,
        "pageSize": os.sysconf("SC_PAGE_SIZE"),
        "memoryCgroup": memory_cgroup_kind(),
        "dmesgRestrict": int(dr) if dr.isdigit() else None,
        "cpuModel": cpu,
        "throttled": throttled,
        "emulated": emulated,
        "emulation": how,
        "versions": versions,
    }


# ---------------------------------------------------------------- kernel log

def kernel_oom_lines(pids, since_uptime, since_epoch, unavailable):
    """Kernel log lines about OOM that name one of `pids`: dmesg, else journalctl -k."""
    pat = re.compile(r"(Killed process|pid=|reaped process) ?(%s)\b" % "|".join(str(p) for p in pids))

    def pick(lines, stamped):
        out = []
        for line in lines:
            if not pat.search(line):
                continue
            if stamped:
                m = re.match(r"\[\s*(\d+\.\d+)\]", line)
                if m and float(m.group(1)) < since_uptime - 1:
                    continue  # an older process that had the same pid
            out.append(line.strip())
        return out[-10:]

    rc, out, err = run_cmd(["dmesg"])
    if rc == 0:
        return pick(out.splitlines(), True), "dmesg"
    dr = (read_text("/proc/sys/kernel/dmesg_restrict") or "?").strip()
    why = "dmesg not installed" if rc is None else "dmesg failed (dmesg_restrict=%s): %s" % (dr, err.strip()[:200])
    unavailable.append({"source": "dmesg", "why": why})
    rc, out, err = run_cmd(["journalctl", "-k", "-q", "--no-pager", "-o", "short-monotonic",
                            "--since", "@%d" % int(since_epoch - 2)])
    if rc is None:
        unavailable.append({"source": "journalctl", "why": "journalctl not installed"})
        return [], None
    if rc != 0 or "insufficient permissions" in err or "not seeing messages" in err:
        unavailable.append({"source": "journalctl", "why": "journalctl -k failed: " + (err.strip() or "exit %d" % rc)[:200]})
        return [], None
    return pick(out.splitlines(), False), "journalctl"


# ---------------------------------------------------------------- worker

class Worker(object):
    def __init__(self, a):
        self.a = a
        self.wd = os.path.abspath(a.workdir)
        self.st = os.path.join(self.wd, STATE)
        self.ev = os.open(os.path.join(self.st, "events.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.interval = max(5.0, float(a.interval_ms))
        self.unavailable = []
        self.samples = 0
        self.pid = None
        self.t_start = None  # monotonic ms when the payload started
        self.exit = None
        self.deadline_fired = False
        self.killed_by = None
        self.kill_marker = os.path.join(self.st, "kill-requested")
        self.phases = []
        self.cur_phase = None
        self.values = {}
        self.tails = {1: bytearray(), 2: bytearray()}
        self.partial = bytearray()
        self.history = []  # (t, tree majflt, sys majflt, psi) for the pressure window
        self.pidfiles = {}
        self.tree = set()
        self.children_ok = os.path.exists("/proc/self/task/%d/children" % os.getpid())
        self.peak = {"rss": 0, "anon": 0, "hwm": 0, "minAvail": None, "cg": 0}
        self.last_hwm = 0
        self.prev = None
        self.rates = (0, 0, None)
        self.emitted = 0  # sample events written, so a reader can check it lost none
        self.tree_hwm = 0
        self.pending = []
        self.sysmem = (0, 0)
        self.slow_t = -SLOW_MS
        self.page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def emit(self, obj):
        self.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())

    def write(self, data):
        if self.pending:  # samples first: the file stays in time order
            data = "".join(self.pending).encode() + data
            del self.pending[:]
        while data:
            n = os.write(self.ev, data)
            data = data[n:]

    def rel(self):
        return int(round(mono_ms() - self.t_start)) if self.t_start is not None else 0

    # --- system sources, opened once

    def open_sources(self):
        self.meminfo = open_or_none("/proc/meminfo")
        self.vmstat = open_or_none("/proc/vmstat")
        self.cg_kind, d = find_memcg()
        self.cg_dir = d if self.cg_kind else None
        self.cg_usage = None
        self.cg_peak_fd = None
        self.cg_peak_reset = False
        self.psi = None
        self.psi_scope = "system"
        if self.cg_kind == "v2":  # the job's own pressure beats a shared machine's
            self.psi = open_or_none(os.path.join(self.cg_dir, "memory.pressure"))
            self.psi_scope = "cgroup"
        if self.psi is None:
            self.psi = open_or_none("/proc/pressure/memory")
            self.psi_scope = "system"
        if self.psi is None:
            self.unavailable.append({"source": "psi", "why": "no /proc/pressure/memory (kernel without PSI or psi=0)"})
        if self.cg_kind is None:
            self.unavailable.append({"source": "cgroup", "why": d})
        elif self.cg_kind == "v2":
            self.cg_usage = open_or_none(os.path.join(d, "memory.current"))
            try:  # kernel 6.12+: writing memory.peak resets it for this fd
                self.cg_peak_fd = os.open(os.path.join(d, "memory.peak"), os.O_RDWR)
                os.write(self.cg_peak_fd, b"reset\n")
                self.cg_peak_reset = True
            except OSError:
                pass
        else:
            self.cg_usage = open_or_none(os.path.join(d, "memory.usage_in_bytes"))
            try:
                with open(os.path.join(d, "memory.max_usage_in_bytes"), "w") as f:
                    f.write("0\n")
                self.cg_peak_reset = True
            except OSError:
                pass
        vm = self.vmstat.read() if self.vmstat else b""
        self.oom_before = vmstat_field(vm, b"oom_kill")
        if self.oom_before is None:
            self.unavailable.append({"source": "vmstat_oom_kill", "why": "/proc/vmstat has no oom_kill (kernel < 4.13)"})
        self.cg_oom_before = cgroup_oom_kills(self.cg_kind, self.cg_dir) if self.cg_kind else None

    def cgroup_peak_kb(self):
        if not self.cg_kind:
            return None
        if self.cg_peak_reset:
            try:
                if self.cg_kind == "v2":
                    return int(os.pread(self.cg_peak_fd, 64, 0).strip()) // 1024
                return int(read_text(os.path.join(self.cg_dir, "memory.max_usage_in_bytes")).strip()) // 1024
            except (OSError, ValueError, AttributeError):
                pass
        return self.peak["cg"] or None

    # --- the payload's process tree

    def discover(self):
        """Descendants of the payload via /proc/PID/task/TID/children, else
        by process group (a full /proc scan, so done less often)."""
        found = set()
        if self.children_ok:
            todo = [self.pid]
            while todo:
                p = todo.pop()
                if p in found:
                    continue
                found.add(p)
                try:
                    tids = os.listdir("/proc/%d/task" % p)
                except OSError:
                    continue
                for tid in tids:
                    kids = read_text("/proc/%d/task/%s/children" % (p, tid)) or ""
                    todo.extend(int(k) for k in kids.split())
        else:
            found.add(self.pid)
            for name in os.listdir("/proc"):
                if name.isdigit():
                    stat = read_text("/proc/%s/stat" % name) or ""
                    f = stat.rpartition(")")[2].split()
                    if len(f) > 2 and f[2] == str(self.pid):
                        found.add(int(name))
        for p in found - set(self.pidfiles):
            st = open_or_none("/proc/%d/status" % p)
            sa = open_or_none("/proc/%d/stat" % p)
            sm = open_or_none("/proc/%d/statm" % p)
            if st and sa and sm:
                self.pidfiles[p] = (st, sa, sm)
        self.tree |= found

    def sample(self, full=False):
        """One sample. Hot path: 20 times a second for the whole run, so it
        reads the cheap statm each time, parses with bytes.find instead of
        regexes and writes its JSON by hand. VmHWM (monotonic, so nothing is
        lost by reading it less often), fault counters and PSI (a 10 s average
        anyway) come every 4th sample, and whenever `full` (phase edges, the
        deadline)."""
        if self.pid is None:
            return
        k = self.samples
        self.samples = k + 1
        if k % (20 if self.children_ok else 40) == 0:
            self.discover()
        t = self.rel()
        slow = full or t - self.slow_t >= SLOW_MS
        if slow:
            self.slow_t = t
        rss = anon = fil = pmaj = 0
        hwm = self.tree_hwm
        if slow:
            hwm = 0
        n = 0
        page_kb = self.page_kb
        for p, (st, sa, sm) in list(self.pidfiles.items()):
            try:
                m = sm.read().split()
                s = st.read() if slow else None
                stat = sa.read() if slow else None
            except OSError:
                m = None
            if not m or (slow and not s):
                st.close()
                sa.close()
                sm.close()
                del self.pidfiles[p]
                continue
            n += 1
            # statm: size resident shared(file+shmem) ... in pages
            r = int(m[1]) * page_kb
            sh = int(m[2]) * page_kb
            rss += r
            fil += sh
            anon += r - sh
            if s:
                h = kb_after(s, b"VmHWM:")
                if h > hwm:
                    hwm = h
            if stat:
                f = stat.rpartition(b")")[2].split()
                if len(f) > 9:
                    pmaj += int(f[9])
        if slow:
            self.tree_hwm = hwm
        if not n:
            return  # the tree is gone (killed or exiting): nothing to measure
        if slow:  # system-wide, and costly for the kernel to produce
            mi = self.meminfo.read() if self.meminfo else b""
            self.sysmem = (kb_after(mi, b"MemAvailable:"), kb_after(mi, b"SwapTotal:") - kb_after(mi, b"SwapFree:"))
        avail, swap = self.sysmem
        cg = None
        if self.cg_usage:
            try:
                cg = int(self.cg_usage.read()) // 1024
            except (OSError, ValueError):
                cg = None
        now = mono_ms()
        if slow:
            smaj = kb_after(self.vmstat.read(), b"\npgmajfault ") if self.vmstat else 0
            psi = None
            if self.psi:
                buf = self.psi.read()
                i = buf.find(b"avg10=")
                if i >= 0:
                    try:
                        psi = float(buf[i + 6:buf.find(b" ", i)])
                    except ValueError:
                        psi = None
            if self.prev:
                dt = max(1e-3, (now - self.prev[0]) / 1000.0)
                self.rates = (int(round(max(0, smaj - self.prev[2]) / dt)),
                              int(round(max(0, pmaj - self.prev[1]) / dt)), psi)
            else:
                self.rates = (0, 0, psi)
            self.prev = (now, pmaj, smaj)
            self.history.append((now, pmaj, smaj, psi))
            if len(self.history) > PRESSURE_WINDOW_MS / self.interval:
                del self.history[: len(self.history) // 2]
        sys_rate, tree_rate, psi = self.rates
        pk = self.peak
        if rss > pk["rss"]:
            pk["rss"] = rss
        if anon > pk["anon"]:
            pk["anon"] = anon
        if hwm > pk["hwm"]:
            pk["hwm"] = hwm
        if pk["minAvail"] is None or avail < pk["minAvail"]:
            pk["minAvail"] = avail
        if cg is not None and cg > pk["cg"]:
            pk["cg"] = cg
        ph = self.cur_phase
        if ph is not None:
            top = hwm if hwm > ph["hwm0"] and hwm > rss else rss  # the high-water mark rose during this phase
            if top > ph["peakRssKb"]:
                ph["peakRssKb"] = top
        if hwm > self.last_hwm:
            self.last_hwm = hwm
        line = ('{"type":"sample","t":%d,"n":%d,"rss":%d,"anon":%d,"file":%d,"hwm":%d,"avail":%d,'
                '"swap":%d,"majflt":%d,"pmajflt":%d' % (t, n, rss, anon, fil, hwm, avail, swap, sys_rate, tree_rate))
        if psi is not None:
            line += ',"psi":%r' % psi
        if cg is not None:
            line += ',"cg":%d' % cg
        # Written in batches every SLOW_MS (or before any other event): fewer syscalls, same order.
        self.pending.append(line + "}\n")
        self.emitted += 1
        if slow:
            self.write(b"")

    def pressure(self):
        """Fault rates and PSI over the window before now."""
        if len(self.history) < 2:
            return {"windowMs": 0, "majfltPerS": 0, "sysMajfltPerS": 0, "psiSome10": None, "psiScope": None}
        end = self.history[-1]
        start = end
        for h in self.history:
            if end[0] - h[0] <= PRESSURE_WINDOW_MS:
                start = h
                break
        dt = max(1e-3, (end[0] - start[0]) / 1000.0)
        psis = [h[3] for h in self.history if h[3] is not None and end[0] - h[0] <= PRESSURE_WINDOW_MS]
        return {"windowMs": int(end[0] - start[0]),
                "majfltPerS": int(round((end[1] - start[1]) / dt)),
                "sysMajfltPerS": int(round((end[2] - start[2]) / dt)),
                "psiSome10": max(psis) if psis else None,
                "psiScope": self.psi_scope if psis else None}

    # --- phases and payload output

    def start_phase(self, name):
        self.sample(full=True)
        t = self.rel()
        self.end_phase(t)
        if name is not None:
            self.cur_phase = {"name": name, "startMs": t, "peakRssKb": 0, "hwm0": self.last_hwm}
            self.emit({"type": "phase", "name": name, "t": t})

    def end_phase(self, t, final_hwm=None):
        ph = self.cur_phase
        if ph is None:
            return
        if final_hwm is not None and final_hwm > ph["hwm0"]:
            ph["peakRssKb"] = max(ph["peakRssKb"], final_hwm)
        self.phases.append({"name": ph["name"], "startMs": ph["startMs"], "endMs": t, "peakRssKb": ph["peakRssKb"]})
        self.cur_phase = None

    def on_line(self, line):
        if not line.startswith(b"@@hil "):
            return
        parts = line.decode("utf-8", "replace").strip().split(None, 3)
        if len(parts) >= 3 and parts[1] == "phase":
            self.start_phase(parts[2])
        elif len(parts) == 2 and parts[1] == "endphase":
            self.start_phase(None)
        elif len(parts) == 4 and parts[1] == "value":
            try:
                val = json.loads(parts[3])
            except ValueError:
                val = parts[3]
            if not (val is None or isinstance(val, (str, int, float, bool))):
                val = json.dumps(val, separators=(",", ":"))
            self.values[parts[2]] = val
            self.emit({"type": "value", "key": parts[2], "value": val, "t": self.rel()})

    def on_output(self, fd, data, log):
        if log["n"] < LOG_CAP:
            os.write(log["fd"], data[: LOG_CAP - log["n"]])
            log["n"] += len(data)
        tail = self.tails[fd]
        tail += data
        if len(tail) > 2 * TAIL_BYTES:
            del tail[: len(tail) - TAIL_BYTES]
        if fd == 1:
            self.partial += data
            while True:
                i = self.partial.find(b"\n")
                if i < 0:
                    break
                line = bytes(self.partial[:i])
                del self.partial[: i + 1]
                self.on_line(line)
            if len(self.partial) > 65536:
                del self.partial[:]

    # --- killing

    def killpg(self):
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def group_alive(self):
        """Pids still in the payload's process group or tree."""
        left = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            stat = read_text("/proc/%s/stat" % name) or ""
            f = stat.rpartition(")")[2].split()
            if len(f) > 2 and f[0] != "Z" and (f[2] == str(self.pid) or int(name) in self.tree):
                left.append(int(name))
        return left

    # --- phases of a job

    def run_probe(self, deadline):
        argv = [sys.executable, os.path.abspath(self.a.probe)]
        t0 = mono_ms()
        try:
            p = subprocess.Popen(argv, cwd=self.wd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            return False, "probe could not start: %s" % e
        while True:
            try:
                out, _ = p.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if mono_ms() > deadline or os.path.exists(self.kill_marker):
                    os.killpg(p.pid, signal.SIGKILL)
                    p.communicate()
                    return False, "probe did not finish before the deadline (%d ms)" % (mono_ms() - t0)
        text = out.decode("utf-8", "replace").strip()
        last = text.splitlines()[-1] if text else ""
        if p.returncode == 0:
            return True, last or "ok"
        how = "exit %d" % p.returncode if p.returncode > 0 else "signal " + signame(-p.returncode)
        return False, (last or "probe failed") + " (" + how + ")"

    def end(self, extra):
        ev = {"type": "end", "unavailable": self.unavailable, "values": self.values}
        ev.update(extra)
        self.emit(ev)

    def run(self):
        a = self.a
        t_agent = mono_ms()
        deadline = t_agent + float(a.deadline_s) * 1000.0
        self.emit({"type": "hello", "v": PROTOCOL, "agentPid": os.getpid(), "python": sys.version.split()[0],
                   "intervalMs": self.interval, "deadlineMs": int(float(a.deadline_s) * 1000),
                   "epochMs": int(time.time() * 1000)})
        if not a.no_facts:
            self.emit({"type": "facts", "facts": gather_facts(a.standin)})
        probe = None
        if a.probe:
            ok, msg = self.run_probe(deadline)
            probe = {"ok": ok, "message": msg}
            self.emit({"type": "probe", "ok": ok, "message": msg})
            if not ok:
                return self.end({"probe": probe, "started": False})
        if os.path.exists(self.kill_marker):
            return self.end({"probe": probe, "started": False, "killedBy": "controller"})
        self.open_sources()
        self.launch(a.argv, deadline)
        return self.finish(probe)

    def launch(self, argv, deadline):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # markers must arrive when printed
        self.since_uptime = float((read_text("/proc/uptime") or "0").split()[0])
        self.since_epoch = time.time()
        launcher = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(ctl_w)] + list(argv),
                                    cwd=self.wd, env=env, stdin=subprocess.DEVNULL, stdout=out_w,
                                    stderr=err_w, pass_fds=(ctl_w,), close_fds=True)
        for fd in (out_w, err_w, ctl_w):
            os.close(fd)
        logs = {out_r: {"fd": os.open(os.path.join(self.st, "stdout.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "n": 0},
                err_r: {"fd": os.open(os.path.join(self.st, "stderr.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "n": 0}}
        which = {out_r: 1, err_r: 2}
        open_fds = [out_r, err_r, ctl_r]
        ctl_buf = b""
        next_sample = mono_ms()
        exited_at = None
        while open_fds:
            now = mono_ms()
            if self.exit is not None and exited_at is not None and now - exited_at > 1000:
                self.killpg()  # something of the group still holds the pipes
                break
            timeout = max(0.0, (next_sample - now) / 1000.0)
            if self.pid is not None and not self.deadline_fired:
                timeout = min(timeout, max(0.0, (deadline - now) / 1000.0))
            try:
                ready, _, _ = select.select(open_fds, [], [], timeout)
            except InterruptedError:
                ready = []
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    open_fds.remove(fd)
                    os.close(fd)
                    continue
                if fd == ctl_r:
                    ctl_buf += data
                    while b"\n" in ctl_buf:
                        line, ctl_buf = ctl_buf.split(b"\n", 1)
                        self.on_ctl(line.decode().split())
                        if self.exit is not None:
                            exited_at = mono_ms()
                else:
                    self.on_output(which[fd], data, logs[fd])
            now = mono_ms()
            if self.pid is not None and self.exit is None:
                if now >= next_sample:
                    self.sample()
                    next_sample = max(next_sample + self.interval, now + self.interval / 4)
                    if self.samples % 4 == 0 and self.killed_by is None and os.path.exists(self.kill_marker):
                        self.killed_by = "controller"
                        self.killpg()
                if now >= deadline and not self.deadline_fired and self.killed_by is None:
                    self.sample(full=True)
                    self.pressure_at_deadline = self.pressure()
                    self.deadline_fired = True
                    self.killed_by = "deadline"
                    self.killpg()
        launcher.wait()
        for lg in logs.values():
            os.close(lg["fd"])

    def on_ctl(self, f):
        if f and f[0] == "P":
            self.pid = int(f[1])
            self.t_start = mono_ms()
            self.tree.add(self.pid)
            with open(os.path.join(self.st, "payload.json"), "w") as fh:
                json.dump({"pid": self.pid, "pgid": self.pid}, fh)
            self.emit({"type": "start", "pid": self.pid, "pgid": self.pid, "t": 0,
                       "cgroup": (self.cg_kind + ":" + self.cg_dir) if self.cg_kind else None})
            self.sample(full=True)
        elif f and f[0] == "X":
            code, sig, maxrss, ut, st_, maj = (int(x) for x in f[1:7])
            self.payload_ms = self.rel()
            self.exit = {"code": code if code >= 0 else None, "signal": signame(sig) if sig else None,
                         "rusage": {"maxrssKb": maxrss, "utimeMs": ut, "stimeMs": st_, "majflt": maj}}

    def finish(self, probe):
        ex = self.exit or {"code": None, "signal": None, "rusage": None}
        if self.killed_by is None and os.path.exists(self.kill_marker):
            self.killed_by = "controller"  # `monitor.py kill` struck between two samples
        # Leftovers of the group (background children) die with the job.
        leftovers = self.group_alive() if self.pid else []
        for _ in range(50):
            if not leftovers:
                break
            self.killpg()
            for p in leftovers:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
            leftovers = self.group_alive()
        vm = self.vmstat.read() if self.vmstat else b""
        oom_after = vmstat_field(vm, b"oom_kill")
        cg_after = cgroup_oom_kills(self.cg_kind, self.cg_dir) if self.cg_kind else None
        lines, log_source = [], None
        if ex["signal"] == "KILL" and self.killed_by is None:
            lines, log_source = kernel_oom_lines(sorted(self.tree), self.since_uptime, self.since_epoch, self.unavailable)
        ru = ex["rusage"] or {}
        hwm_peak = self.peak["hwm"]
        rusage_peak = ru.get("maxrssKb") or 0
        t_end = getattr(self, "payload_ms", self.rel())
        self.end_phase(t_end, final_hwm=max(hwm_peak, rusage_peak))
        candidates = [(hwm_peak, "vmhwm"), (rusage_peak, "launcher_rusage"), (self.peak["rss"], "sampled_rss")]
        best = max(candidates, key=lambda c: c[0])
        memory = {"peakRssKb": best[0] or None, "peakMethod": best[1] if best[0] else None,
                  "peakAnonKb": self.peak["anon"] or None, "sampledPeakRssKb": self.peak["rss"] or None,
                  "hwmPeakKb": hwm_peak or None, "rusageMaxrssKb": rusage_peak or None,
                  "cgroupPeakKb": self.cgroup_peak_kb(), "minAvailKb": self.peak["minAvail"],
                  "samples": self.emitted}
        self.end({
            "started": True, "probe": probe, "pid": self.pid, "pids": sorted(self.tree),
            "code": ex["code"], "signal": ex["signal"], "rusage": ex["rusage"],
            "payloadMs": t_end, "deadlineFired": self.deadline_fired, "killedBy": self.killed_by,
            "pressure": getattr(self, "pressure_at_deadline", None) or self.pressure(),
            "oom": {"vmstatBefore": self.oom_before, "vmstatAfter": oom_after,
                    "cgroupBefore": self.cg_oom_before, "cgroupAfter": cg_after,
                    "kernelLines": lines, "kernelLogSource": log_source},
            "memory": memory, "phases": self.phases, "left": leftovers,
            "stdoutTail": bytes(self.tails[1][-TAIL_BYTES:]).decode("utf-8", "replace"),
            "stderrTail": bytes(self.tails[2][-TAIL_BYTES:]).decode("utf-8", "replace"),
        })


# ---------------------------------------------------------------- commands

def state_dir(wd):
    return os.path.join(os.path.abspath(wd), STATE)


def alive(pid):
    stat = read_text("/proc/%d/stat" % pid)
    if stat is None:
        return False
    f = stat.rpartition(")")[2].split()
    return bool(f) and f[0] not in ("Z", "X")


def follow(wd, offset, wait_worker=True):
    """Copy events.jsonl from `offset` to stdout, whole lines only, until `end`.
    Exit 0 after `end`; 3 when the worker vanished without one."""
    st = state_dir(wd)
    path = os.path.join(st, "events.jsonl")
    out = sys.stdout.buffer
    pid = None
    t0 = time.monotonic()
    while not os.path.exists(path):
        if time.monotonic() - t0 > 10:
            sys.stderr.write("monitor: no events file in %s\n" % st)
            return 3
        time.sleep(0.02)
    with open(path, "rb") as f:
        f.seek(offset)
        buf = b""
        quiet = 0
        while True:
            chunk = f.read(65536)
            if chunk:
                buf += chunk
                i = buf.rfind(b"\n")
                if i >= 0:
                    whole, buf = buf[: i + 1], buf[i + 1:]
                    try:
                        out.write(whole)
                        out.flush()
                    except (BrokenPipeError, OSError):
                        return 4  # our stdout went away (SSH dropped); the worker carries on
                    if b'"type":"end"' in whole:
                        pid = pid or read_pid(st)
                        t1 = time.monotonic()
                        while pid and alive(pid) and time.monotonic() - t1 < 5:
                            time.sleep(0.01)  # so no process of the job outlives `start`
                        return 0
                continue
            if pid is None:
                pid = read_pid(st)
            quiet += 1
            if quiet % 2 == 0 and pid is not None and not alive(pid):
                tail = f.read()
                if tail:
                    buf += tail
                    continue
                sys.stderr.write("monitor: worker %d is gone and wrote no end event\n" % pid)
                return 3
            time.sleep(0.25)  # waking less keeps the device quiet; events just arrive in batches


def read_pid(st):
    text = read_text(os.path.join(st, "worker.pid"))
    return int(text) if text and text.strip().isdigit() else None


def cmd_start(a):
    st = state_dir(a.workdir)
    os.makedirs(st, mode=0o700, exist_ok=True)
    if os.path.exists(os.path.join(st, "events.jsonl")):
        sys.stderr.write("monitor: %s already holds a run; use attach\n" % a.workdir)
        return 2
    if not a.argv:
        sys.stderr.write("monitor: nothing to run (give the payload after --)\n")
        return 2
    sys.stdout.flush()
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        # The worker: no fd of the SSH session may stay open, or the channel never closes.
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(os.path.join(st, "agent.err"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.close(null)
        os.close(err)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        code = 0
        try:
            with open(os.path.join(st, "worker.pid"), "w") as f:
                f.write(str(os.getpid()))
            try:  # prefer that the OOM killer takes the payload, not us (needs privilege)
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("-500")
            except OSError:
                pass
            w = None
            try:
                w = Worker(a)
                w.run()
            except BaseException as e:
                import traceback
                traceback.print_exc()
                if w is not None:  # the end event is what the controller waits for
                    w.killpg()
                    w.emit({"type": "end", "agentError": "%s: %s" % (type(e).__name__, e),
                            "started": w.pid is not None, "unavailable": w.unavailable, "values": w.values})
                code = 1
        finally:
            os._exit(code)
    os.waitpid(first, 0)
    return follow(a.workdir, 0)


def cmd_attach(a):
    return follow(a.workdir, a.offset)


def cmd_kill(a):
    st = state_dir(a.workdir)
    with open(os.path.join(st, "kill-requested"), "w") as f:
        f.write(str(time.time()))
    info = read_text(os.path.join(st, "payload.json"))
    pgid = json.loads(info)["pgid"] if info else None
    events = os.path.join(st, "events.jsonl")
    done = os.path.exists(events) and b'"type":"end"' in open(events, "rb").read()
    if pgid and not done:  # once ended, the number may belong to someone else
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    # Wait for the worker to record the end, so cleanup after us is safe.
    pid = read_pid(st)
    t0 = time.monotonic()
    while pid and alive(pid) and time.monotonic() - t0 < 15:
        time.sleep(0.02)
    ended = b'"type":"end"' in (open(os.path.join(st, "events.jsonl"), "rb").read()
                                if os.path.exists(os.path.join(st, "events.jsonl")) else b"")
    print(json.dumps({"pgid": pgid, "workerGone": not (pid and alive(pid)), "ended": ended}))
    return 0


def cmd_facts(a):
    print(json.dumps(gather_facts(a.standin)))
    return 0


def main(argv):
    import argparse
    p = argparse.ArgumentParser(prog="monitor.py")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("start")
    s.add_argument("--workdir", required=True)
    s.add_argument("--deadline-s", type=float, required=True)
    s.add_argument("--interval-ms", type=float, default=50.0)
    s.add_argument("--probe")
    s.add_argument("--no-facts", action="store_true")
    s.add_argument("--standin")
    s.add_argument("argv", nargs=argparse.REMAINDER)
    at = sub.add_parser("attach")
    at.add_argument("--workdir", required=True)
    at.add_argument("--offset", type=int, default=0)
    k = sub.add_parser("kill")
    k.add_argument("--workdir", required=True)
    fa = sub.add_parser("facts")
    fa.add_argument("--standin")
    a = p.parse_args(argv)
    if a.cmd == "start":
        a.argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
        return cmd_start(a)
    if a.cmd == "attach":
        return cmd_attach(a)
    if a.cmd == "kill":
        return cmd_kill(a)
    if a.cmd == "facts":
        return cmd_facts(a)
    p.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
