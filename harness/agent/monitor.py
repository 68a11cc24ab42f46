#!/usr/bin/env python3
"""pi-hil on-device agent. Python 3.7+, standard library only.

    monitor.py start  --workdir W --deadline-s N [--interval-ms 50] [--probe FILE]
                      [--facts full|now|none] [--standin DESC] [--bundle] [--cleanup] -- ARGV...
    monitor.py attach --workdir W [--offset BYTES] [--cleanup]
    monitor.py kill   --workdir W
    monitor.py facts  [--standin DESC]

`start` detaches a worker (double fork + setsid) so that a dropped SSH session
does not take the job with it. The worker appends JSON events, one per line, to
W/.hil/events.jsonl; `start` and `attach` copy that file to stdout from a byte
offset until the `end` event, so a controller that lost its connection
re-attaches and reads on where it stopped. The worker itself enforces the
deadline, so it holds with the controller gone.

One job is one exec: the controller runs BOOT (harness/agent/client.ts) with
`python3 -c`, which reads this file from stdin, writes it into the workdir and
runs it; with --bundle, `start` then unpacks the payload from the rest of stdin
(see unpack). With --cleanup, `start` (or `attach`) removes the workdir after
the end, once the controller has acknowledged it on stdin.
"""
# Only modules that cost next to nothing to import: on an emulated Pi 3, `json`
# (with the `re` and `enum` it pulls in) costs 0.35 s, `subprocess` 0.2 s and
# `argparse` 0.1 s, in every job. Events are written by `dumps` below, child
# processes started by `spawn`, and `json` and `re` are imported where only the
# rare paths (facts, kernel log, marker values) need them.
import errno
import os
import select
import sys
import time

try:
    import _signal as signal  # the C module: `signal` itself imports enum
except ImportError:  # not CPython
    import signal

PROTOCOL = 1
STATE = ".hil"
TAIL_BYTES = 8192
LOG_CAP = 16 * 1024 * 1024
# `monitor.py kill` writes this file (the wall time in it), then kills the payload's group.
KILL_MARKER = "kill-requested"
# `start` could not unpack the payload (BOOT in client.ts uses the same code for the agent itself).
DEPLOY_FAILED = 5
# Window before the deadline over which fault rate and PSI are judged.
PRESSURE_WINDOW_MS = 5000
# VmHWM, fault counters and PSI are read at most this often (see TreeSampler.sample).
SLOW_MS = 200

def mono_ms():
    return time.monotonic() * 1000.0


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def read_text(path):
    data = read_bytes(path)
    return data.decode("utf-8", "replace") if data is not None else None


def spawn(argv, stdin, stdout, stderr, env=None, new_group=False):
    """Start argv (looked up on PATH) with the given fds as 0, 1 and 2; every
    other fd of ours is close-on-exec, as Python makes them. With new_group,
    the child leads a process group of its own (its pgid is its pid). Returns
    the pid; raises OSError when argv cannot be run. posix_spawn (vfork
    underneath) where there is one: a forked copy of the agent costs an
    emulated Pi more than the import of subprocess saved."""
    env = dict(os.environ) if env is None else env
    if hasattr(os, "posix_spawnp"):  # Python 3.8+
        acts = [(os.POSIX_SPAWN_DUP2, fd, std) for fd, std in ((stdin, 0), (stdout, 1), (stderr, 2))]
        return os.posix_spawnp(argv[0], argv, env, file_actions=acts, **({"setpgroup": 0} if new_group else {}))
    r, w = os.pipe()  # close-on-exec: EOF when exec succeeds, the error otherwise
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if new_group:
                os.setpgid(0, 0)
            for fd, std in ((stdin, 0), (stdout, 1), (stderr, 2)):
                os.dup2(fd, std)
            os.execvpe(argv[0], argv, env)
        except BaseException as e:
            try:
                os.write(w, ("%s: %s" % (argv[0], e)).encode("utf-8", "replace"))
            except BaseException:
                pass
        os._exit(127)
    os.close(w)
    err = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        err += chunk
    os.close(r)
    if err:
        os.waitpid(pid, 0)
        raise OSError(err.decode("utf-8", "replace"))
    return pid


def exit_code(status):
    """A wait status as subprocess reports it: the exit code, or minus the signal."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def run_cmd(argv, timeout=5.0):
    """(returncode, stdout, stderr); returncode None when the tool is missing."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = spawn(argv, null, out_w, err_w)
    except OSError as e:
        for fd in (out_r, err_r):
            os.close(fd)
        return None, "", str(e)
    finally:
        for fd in (out_w, err_w, null):
            os.close(fd)
    got = {out_r: b"", err_r: b""}
    open_fds = [out_r, err_r]
    until = time.monotonic() + timeout
    while open_fds:
        left = until - time.monotonic()
        if left <= 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            break
        try:
            ready, _, _ = select.select(open_fds, [], [], left)
        except InterruptedError:
            continue
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                got[fd] += data
            else:
                open_fds.remove(fd)
    for fd in (out_r, err_r):
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    if open_fds:
        return None, "", "%s: no answer within %g s" % (argv[0], timeout)
    return exit_code(status), got[out_r].decode("utf-8", "replace"), got[err_r].decode("utf-8", "replace")


SIGNAMES = {}


def signame(num):
    """KILL for 9, as signal.Signals would name it (which needs enum)."""
    if not SIGNAMES:
        for k in sorted(dir(signal)):  # sorted: of two aliases (SIGABRT, SIGIOT) the canonical comes first
            v = getattr(signal, k)
            if k.startswith("SIG") and not k.startswith("SIG_") and isinstance(v, int):
                SIGNAMES.setdefault(int(v), k[3:])
    return SIGNAMES.get(num, str(num))


# json.dumps(obj, separators=(",", ":")) for what the agent writes (dicts, lists, strings,
# numbers, booleans, None), ASCII only as json.dumps makes it; a float that is not finite is null.
ESCAPES = dict((i, "\\u%04x" % i) for i in list(range(32)) + [127])
ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"})


def dumps(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        s = v.translate(ESCAPES)
        if not s.isascii():
            s = "".join(c if ord(c) < 128 else (
                "\\u%04x" % ord(c) if ord(c) < 0x10000 else
                "\\u%04x\\u%04x" % (0xD800 + ((ord(c) - 0x10000) >> 10), 0xDC00 + ((ord(c) - 0x10000) & 0x3FF)))
                for c in s)
        return '"' + s + '"'
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return repr(v) if v - v == 0 else "null"
    if isinstance(v, dict):
        return "{" + ",".join(dumps(str(k)) + ":" + dumps(x) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    raise TypeError("cannot write %s as JSON" % type(v).__name__)


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

def number_after(buf, key):
    """The integer after `key` at the start of a line of `buf`, None if absent.

    The one parser for every "key value" source: /proc/meminfo and status
    ("VmHWM:   1234 kB"), /proc/vmstat and the cgroup event files
    ("oom_kill 3"). The key carries its separator (b"VmHWM:", b"oom_kill "),
    so b"oom_kill " never matches "oom_kill_disable". bytes.find, not a regex:
    it runs on the sampling path."""
    if buf.startswith(key):
        i = len(key)
    else:
        i = buf.find(b"\n" + key)
        if i < 0:
            return None
        i += 1 + len(key)
    n = len(buf)
    while i < n and buf[i] in (32, 9):
        i += 1
    j = i
    while j < n and 48 <= buf[j] <= 57:
        j += 1
    return int(buf[i:j]) if j > i else None


def stat_fields(stat):
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp,
    ...). The name may hold spaces and parentheses: split after the last ')'."""
    return stat[stat.rfind(b")") + 1:].split()


def proc_stat(pid):
    """stat_fields of process `pid`, None once it is gone."""
    data = read_bytes("/proc/%d/stat" % pid)
    return stat_fields(data) if data else None


def scan_proc():
    """(pid, stat fields) of every process: the agent's one walk over /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    for name in names:
        if name.isdigit():
            f = proc_stat(int(name))
            if f and len(f) > 2:
                yield int(name), f


def foreign_agents(own_wd):
    """Other controllers' pi-hil jobs alive on this device ({pid, workdir} of their agents): a second
    controller's payload shares this one's memory, and the controller records that as evidence.
    Job workdirs are <root>/<run>/<job>: a foreign job uses the same root under another run (jobs of
    one run are on other devices by construction, however many share a host)."""
    own_run = os.path.dirname(own_wd)
    root = os.path.dirname(own_run)
    found = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        names = []
    for name in names:
        # The command line alone (no stat first): a busy Pi has hundreds of processes, and this runs twice a job.
        data = read_bytes("/proc/%s/cmdline" % name) if name.isdigit() else None
        if not data or b".hil-monitor.py" not in data:
            continue
        pid = int(name)
        argv = data.split(b"\0")
        if not any(a.endswith(b".hil-monitor.py") for a in argv) or b"start" not in argv or b"--workdir" not in argv:
            continue
        i = argv.index(b"--workdir") + 1
        wd = os.path.abspath(argv[i].decode("utf-8", "replace")) if i < len(argv) else ""
        if os.path.dirname(os.path.dirname(wd)) == root and os.path.dirname(wd) != own_run and wd not in found:
            found[wd] = pid
    return [{"pid": pid, "workdir": wd} for wd, pid in sorted(found.items())]


def alive(pid):
    f = proc_stat(pid)
    return bool(f) and f[0] not in (b"Z", b"X")


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
    """The kernel's count of OOM kills inside memory cgroup `d`."""
    data = read_bytes(os.path.join(d, "memory.events" if kind == "v2" else "memory.oom_control"))
    return number_after(data, b"oom_kill ") if data is not None else None


def memory_limit(ram_bytes):
    """(limit, free under it) in MiB for the memory cgroup this process runs
    in; (None, None) when nothing caps it below `ram_bytes`. The tightest limit
    on the way up to the hierarchy's root binds (a container's cap holds for a
    child group that sets none), and free is that group's limit minus its usage."""
    kind, d = find_memcg()
    if kind is None:
        return None, None
    if kind == "v2":
        limit_file, usage_file = "memory.max", "memory.current"
    else:
        limit_file, usage_file = "memory.limit_in_bytes", "memory.usage_in_bytes"
    # v2 says "max" for no limit and v1 a number near 2**63: both are no cap.
    ceiling = ram_bytes or (1 << 60)
    best = None
    while True:
        text = read_text(os.path.join(d, limit_file))
        if text is None:
            break  # above the hierarchy's root
        text = text.strip()
        if text.isdigit() and int(text) < ceiling and (best is None or int(text) < best[0]):
            best = (int(text), d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    if best is None:
        return None, None
    used = (read_text(os.path.join(best[1], usage_file)) or "").strip()
    free = best[0] - int(used) if used.isdigit() else best[0]
    return best[0] >> 20, max(0, free) >> 20


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


def ensure_site():
    """The agent runs with -S (a slow Pi saves the import); where it looks modules up, it needs
    the site-packages the payload's interpreter will see."""
    if sys.flags.no_site and "site" not in sys.modules:
        import site
        site.main()


def dist_version(spec, mod):
    """The version in a .dist-info or .egg-info folder beside the module, or None. A folder listing:
    importlib.metadata costs a slow Pi seconds to import."""
    import re
    wanted = set(re.sub(r"[-_.]+", "_", d).lower() for d in DISTS.get(mod, [mod]))
    where = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.origin else [])
    for loc in where:
        parent = os.path.dirname(loc)
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for n in names:
            if not n.endswith((".dist-info", ".egg-info")):
                continue
            m = re.match(r"^(.+?)-(\d[^-]*?)(?:-py\d.*)?\.(?:dist|egg)-info$", n)
            if m and re.sub(r"[-_.]+", "_", m.group(1)).lower() in wanted:
                return m.group(2)
    return None


def module_version(mod):
    """Version of a module WITHOUT importing it (importing TF costs ~500 MB)."""
    import importlib.util
    import re
    ensure_site()
    try:
        spec = importlib.util.find_spec(mod)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "absent"
    found = dist_version(spec, mod)
    if found:
        return found
    try:
        import importlib.metadata as md
        for dist in DISTS.get(mod, [mod]):
            try:
                return md.version(dist)
            except md.PackageNotFoundError:
                pass
    except ImportError:  # Python 3.7: dist_version above has already read the dist-info folders
        pass
    # Debian packages may ship neither: read __version__ from the source.
    for loc in list(spec.submodule_search_locations or []):
        for fn in ("_version.py", "version.py", "__init__.py"):
            text = read_text(os.path.join(loc, fn)) or ""
            m = re.search(r"""(?m)^(?:__version__|version)\s*=\s*['"]([^'"]+)['"]""", text)
            if m:
                return m.group(1)
    return "present (version unknown)"


def detect_emulation():
    import re
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


def facts_now(throttle=None):
    """The facts that change while a device is in use: read for every job. The
    controller gathers the rest (gather_facts) once per device and run."""
    if throttle is None:
        throttle = read_throttled()
    ram_kb = number_after(read_bytes("/proc/meminfo") or b"", b"MemTotal:") or 0
    limit_mb, limit_free_mb = memory_limit(ram_kb * 1024)
    return {"memoryLimitMb": limit_mb, "memoryLimitFreeMb": limit_free_mb, "throttled": throttle[0]}


def gather_facts(standin=None, throttle=None):
    """Every fact about the device; `throttle` is a read_throttled() already taken."""
    import re
    u = os.uname()
    meminfo = read_bytes("/proc/meminfo") or b""
    ram_kb = number_after(meminfo, b"MemTotal:") or 0
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
    if throttle is None:
        throttle = read_throttled()
    if standin:
        emulated, how = True, "local capped host: " + standin
    else:
        emulated, how = detect_emulation()
    versions = {"python": "%d.%d.%d" % tuple(sys.version_info[:3])}
    for mod in ("numpy", "tensorflow", "tflite_runtime", "ai_edge_litert", "pyarmnn"):
        versions[mod] = module_version(mod)
    facts = {
        "model": model or None,
        "machine": u.machine,
        "longBit": long_bit,
        # The kernel's word size, from uname: a 32-bit userland may run on a 64-bit kernel.
        "kernelBits": 64 if re.match(r"(aarch64|arm64|x86_64|ppc64|s390x|riscv64|mips64)", u.machine) else 32,
        "dpkgArch": dpkg,
        "kernel": u.release,
        "ramMb": ram_kb // 1024,
        "swapMb": (number_after(meminfo, b"SwapTotal:") or 0) // 1024,
        "pageSize": os.sysconf("SC_PAGE_SIZE"),
        "memoryCgroup": memory_cgroup_kind(),
        "dmesgRestrict": int(dr) if dr.isdigit() else None,
        "cpuModel": cpu,
        "emulated": emulated,
        "emulation": how,
        "versions": versions,
    }
    facts.update(facts_now(throttle))
    return facts


# ---------------------------------------------------------------- kernel log

def kernel_oom_lines(pids, since_uptime, since_epoch, unavailable):
    """Kernel log lines about OOM that name one of `pids`: dmesg, else journalctl -k."""
    import re
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


# ---------------------------------------------------------------- the job
#
# One `monitor.py start` is a Job: it emits hello and facts, runs the probe,
# then a PayloadRunner, and ends with end_event(). The runner's parts: the
# EventLog the events go to, the SystemSources and the TreeSampler that
# measure memory, the Markers the payload prints and an OutputStream per
# stream. The agent records facts (what ended the payload, who killed it and
# when); the controller alone decides the outcome from them.

class EventLog(object):
    """events.jsonl, append-only and in whole lines: a controller re-attaches
    by byte offset into it, so nothing is ever rewritten or reordered."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.pending = []  # sample lines not yet written
        self.samples = 0  # sample events written or pending, so a reader can check it lost none
        self.wake_fd = None  # `start` in the foreground waits on this pipe for events other than samples

    def emit(self, obj):
        self.write((dumps(obj) + "\n").encode())
        if self.wake_fd is not None:
            try:
                os.write(self.wake_fd, b".")
            except OSError:
                pass  # nobody is listening (the SSH session dropped), or the pipe is full: it is awake anyway

    def add_sample(self, line):
        # Written in batches (fewer syscalls), and always before any later event, so the file stays in time order.
        self.pending.append(line)
        self.samples += 1

    def flush(self):
        self.write(b"")

    def write(self, data):
        if self.pending:
            data = "".join(self.pending).encode() + data
            del self.pending[:]
        while data:
            n = os.write(self.fd, data)
            data = data[n:]


class PayloadClock(object):
    """Event times are ms since the payload started."""

    def __init__(self):
        self.t0 = None  # monotonic ms at the start
        self.epoch = None  # wall-clock s at the start, to place other processes' time stamps

    def start(self):
        self.t0 = mono_ms()
        self.epoch = time.time()

    def rel(self):
        return int(round(mono_ms() - self.t0)) if self.t0 is not None else 0

    def rel_epoch(self, epoch):
        """A wall-clock instant written by another process, in payload ms."""
        return int(round((epoch - self.epoch) * 1000)) if self.epoch is not None else 0


class SystemSources(object):
    """Machine-wide and memory-cgroup files, opened once just before the
    payload starts; the OOM counters read then are the baseline for after."""

    def __init__(self, unavailable):
        self.meminfo = open_or_none("/proc/meminfo")
        self.vmstat = open_or_none("/proc/vmstat")
        kind, d = find_memcg()
        self.cg_kind = kind
        self.cg_dir = d if kind else None
        self.cg_usage = None
        self.cg_peak_fd = None
        self.cg_peak_reset = False
        self.psi = None
        self.psi_scope = None
        if kind == "v2":  # the job's own pressure beats a shared machine's
            self.psi = open_or_none(os.path.join(d, "memory.pressure"))
            self.psi_scope = "cgroup" if self.psi else None
        if self.psi is None:
            self.psi = open_or_none("/proc/pressure/memory")
            self.psi_scope = "system" if self.psi else None
        if self.psi is None:
            unavailable.append({"source": "psi", "why": "no /proc/pressure/memory (kernel without PSI or psi=0)"})
        if kind is None:
            unavailable.append({"source": "cgroup", "why": d})
        else:
            self.open_cgroup(kind, d)
        self.oom_before = self.vmstat_oom_kills()
        if self.oom_before is None:
            unavailable.append({"source": "vmstat_oom_kill", "why": "/proc/vmstat has no oom_kill (kernel < 4.13)"})
        self.cg_oom_before = self.cgroup_oom_kills()

    def open_cgroup(self, kind, d):
        if kind == "v2":
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

    def vmstat_oom_kills(self):
        return number_after(self.vmstat.read(), b"oom_kill ") if self.vmstat else None

    def cgroup_oom_kills(self):
        return cgroup_oom_kills(self.cg_kind, self.cg_dir) if self.cg_kind else None

    def avail_swap_kb(self):
        """(MemAvailable, swap in use), KiB."""
        mi = self.meminfo.read() if self.meminfo else b""
        swap = (number_after(mi, b"SwapTotal:") or 0) - (number_after(mi, b"SwapFree:") or 0)
        return number_after(mi, b"MemAvailable:") or 0, swap

    def sys_majflt(self):
        return (number_after(self.vmstat.read(), b"pgmajfault ") or 0) if self.vmstat else 0

    def psi_some10(self):
        if not self.psi:
            return None
        buf = self.psi.read()
        i = buf.find(b"avg10=")
        if i < 0:
            return None
        try:
            return float(buf[i + 6:buf.find(b" ", i)])
        except ValueError:
            return None

    def cgroup_kb(self):
        if not self.cg_usage:
            return None
        try:
            return int(self.cg_usage.read()) // 1024
        except (OSError, ValueError):
            return None

    def cgroup_peak_kb(self, sampled):
        """The kernel's cgroup peak where it was reset at the start, else the sampled one."""
        if not self.cg_kind:
            return None
        if self.cg_peak_reset:
            try:
                if self.cg_kind == "v2":
                    return int(os.pread(self.cg_peak_fd, 64, 0).strip()) // 1024
                return int(read_text(os.path.join(self.cg_dir, "memory.max_usage_in_bytes")).strip()) // 1024
            except (OSError, ValueError, AttributeError):
                pass
        return sampled or None


class TreeSampler(object):
    """The memory of the payload's process tree, sampled from /proc: the
    timeline (sample events), the peaks, and the fault rates and PSI behind
    `pressure`."""

    def __init__(self, log, sources, clock, interval):
        self.log = log
        self.src = sources
        self.clock = clock
        self.interval = interval
        self.pid = None
        self.tree = set()  # every pid seen in the tree
        self.pidfiles = {}  # pid -> its (status, stat, statm), kept open
        self.children_ok = os.path.exists("/proc/self/task/%d/children" % os.getpid())
        self.page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        self.count = 0
        self.slow_t = -SLOW_MS
        self.last_hwm = {}  # pid -> its last VmHWM reading
        self.sysmem = (0, 0)
        self.prev = None
        self.rates = (0, 0, None)
        self.history = []  # (t, tree majflt, sys majflt, psi) for the pressure window
        self.peak = {"rss": 0, "anon": 0, "hwm": 0, "minAvail": None, "cg": 0}

    def track(self, pid):
        self.pid = pid
        self.tree.add(pid)

    def discover(self):
        """The tree's processes: descendants via /proc/PID/task/TID/children,
        else the payload's process group by a /proc scan (so done less often)."""
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
            found.update(p for p, f in scan_proc() if int(f[2]) == self.pid)
        for p in found - set(self.pidfiles):
            files = [open_or_none("/proc/%d/%s" % (p, n)) for n in ("status", "stat", "statm")]
            if all(files):
                self.pidfiles[p] = tuple(files)
            else:
                for f in files:
                    if f:
                        f.close()
        self.tree |= found

    def sample(self, full=False):
        """One sample; returns the tree's (rss, hwm) in KiB, or None with
        nothing to measure. Hot path: 20 times a second for the whole run, so
        it reads the cheap statm each time, parses with bytes.find instead of
        regexes and writes its JSON by hand. VmHWM (monotonic, so little is lost
        by reading it less often: at most a peak in a process's last SLOW_MS),
        fault counters and PSI (a 10 s average anyway) are read every SLOW_MS,
        and whenever `full` (phase edges, kills). Reading status every time
        doubled the agent's CPU."""
        if self.pid is None:
            return None
        k = self.count
        self.count = k + 1
        if k % (20 if self.children_ok else 40) == 0:
            self.discover()
        t = self.clock.rel()
        slow = full or t - self.slow_t >= SLOW_MS
        if slow:
            self.slow_t = t
        n, rss, anon, fil, hwm, pmaj = self.read_tree(slow)
        if not n:
            return None  # the tree is gone (killed or exiting)
        if slow:
            self.read_system(pmaj)
        avail, swap = self.sysmem
        sys_rate, tree_rate, psi = self.rates
        cg = self.src.cgroup_kb()
        self.note_peaks(rss, anon, hwm, avail, cg)
        line = ('{"type":"sample","t":%d,"n":%d,"rss":%d,"anon":%d,"file":%d,"hwm":%d,"avail":%d,'
                '"swap":%d,"majflt":%d,"pmajflt":%d' % (t, n, rss, anon, fil, hwm, avail, swap, sys_rate, tree_rate))
        if psi is not None:
            line += ',"psi":%r' % psi
        if cg is not None:
            line += ',"cg":%d' % cg
        self.log.add_sample(line + "}\n")
        if slow:
            self.log.flush()
        return rss, hwm

    def read_tree(self, slow):
        """Sums over the tree: (processes, rss, anon, file, largest VmHWM, major faults)."""
        n = rss = anon = fil = pmaj = 0
        hwm = 0
        page_kb = self.page_kb
        for p, (st, sa, sm) in list(self.pidfiles.items()):
            try:
                m = sm.read().split()
                s = st.read() if slow else None
                stat = sa.read() if slow else None
            except OSError:
                m = None
            if not m or (slow and not s):
                for f in (st, sa, sm):
                    f.close()
                del self.pidfiles[p]
                continue
            n += 1
            # statm: size resident shared(file+shmem) ..., in pages
            r = int(m[1]) * page_kb
            sh = int(m[2]) * page_kb
            rss += r
            fil += sh
            anon += r - sh
            # Between readings, and once exiting (a zombie has no VmHWM line), a process keeps its last one.
            h = self.last_hwm.get(p, 0)
            if slow:
                h = number_after(s, b"VmHWM:") or h
                self.last_hwm[p] = h
            if h > hwm:
                hwm = h
            if slow:
                f = stat_fields(stat)
                if len(f) > 9:
                    pmaj += int(f[9])
        return n, rss, anon, fil, hwm, pmaj

    def read_system(self, pmaj):
        """Machine-wide memory (costly for the kernel to produce), the fault
        rates since the last read, and the pressure window's history."""
        self.sysmem = self.src.avail_swap_kb()
        now = mono_ms()
        smaj = self.src.sys_majflt()
        psi = self.src.psi_some10()
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

    def note_peaks(self, rss, anon, hwm, avail, cg):
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
                "psiScope": self.src.psi_scope if psis else None}


class Markers(object):
    """The phases and values the payload prints as `@@hil` lines on stdout."""

    def __init__(self, log, clock, values, edge):
        self.log = log
        self.clock = clock
        self.values = values
        self.edge = edge  # takes a full sample, returns the tree's high-water mark so far
        self.phases = []
        self.cur = None

    def on_line(self, line):
        if not line.startswith(b"@@hil "):
            return
        parts = line.decode("utf-8", "replace").strip().split(None, 3)
        if len(parts) >= 3 and parts[1] == "phase":
            self.start(parts[2])
        elif len(parts) == 2 and parts[1] == "endphase":
            self.start(None)
        elif len(parts) == 4 and parts[1] == "value":
            import json  # values are rare; the agent does without json otherwise
            try:
                val = json.loads(parts[3])
            except ValueError:
                val = parts[3]
            if not (val is None or isinstance(val, (str, int, float, bool))):
                val = dumps(val)
            self.values[parts[2]] = val
            self.log.emit({"type": "value", "key": parts[2], "value": val, "t": self.clock.rel()})

    def start(self, name):
        """Close the current phase here and open `name` (None: open none)."""
        hwm = self.edge()
        t = self.clock.rel()
        self.close(t)
        if name is not None:
            self.cur = {"name": name, "startMs": t, "peakRssKb": 0, "hwm0": hwm}
            self.log.emit({"type": "phase", "name": name, "t": t})

    def observe(self, rss, hwm):
        ph = self.cur
        if ph is not None:
            top = hwm if hwm > ph["hwm0"] and hwm > rss else rss  # the high-water mark rose during this phase
            if top > ph["peakRssKb"]:
                ph["peakRssKb"] = top

    def close(self, t, final_hwm=None):
        ph = self.cur
        if ph is None:
            return
        if final_hwm is not None and final_hwm > ph["hwm0"]:
            ph["peakRssKb"] = max(ph["peakRssKb"], final_hwm)
        self.phases.append({"name": ph["name"], "startMs": ph["startMs"], "endMs": t, "peakRssKb": ph["peakRssKb"]})
        self.cur = None


class OutputStream(object):
    """One output stream of the payload: a copy in the state folder (capped at
    LOG_CAP), the tail the end event carries, and how much was written, so
    that a cut is never silent."""

    def __init__(self, path, on_line=None):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.on_line = on_line
        self.written = 0
        self.tail = bytearray()
        self.partial = bytearray()

    def feed(self, data):
        if self.written < LOG_CAP:
            os.write(self.fd, data[:LOG_CAP - self.written])
        self.written += len(data)
        tail = self.tail
        tail += data
        if len(tail) > 2 * TAIL_BYTES:
            del tail[:len(tail) - TAIL_BYTES]
        if self.on_line is None:
            return
        self.partial += data
        while True:
            i = self.partial.find(b"\n")
            if i < 0:
                break
            line = bytes(self.partial[:i])
            del self.partial[:i + 1]
            self.on_line(line)
        if len(self.partial) > 65536:
            del self.partial[:]  # a line that long is no marker

    def kept(self):
        """The tail kept: the last TAIL_BYTES, less a split UTF-8 sequence at the cut."""
        t = bytes(self.tail[-TAIL_BYTES:])
        if self.written > len(t):
            i = 0
            while i < 3 and i < len(t) and 0x80 <= t[i] <= 0xBF:
                i += 1
            t = t[i:]
        return t

    def close(self):
        os.close(self.fd)


class PayloadRunner(object):
    """Runs the payload in its own process group, pumps its output and samples
    it until it ends, and kills the group when the deadline passes or the
    controller asks (`monitor.py kill`). It records who killed it and when,
    never what that means."""

    def __init__(self, st, log, unavailable, values, interval, deadline):
        self.st = st
        self.log = log
        self.unavailable = unavailable
        self.interval = interval
        self.deadline = deadline  # monotonic ms
        self.kill_marker = os.path.join(st, KILL_MARKER)
        self.clock = PayloadClock()
        self.sources = SystemSources(unavailable)
        self.sampler = TreeSampler(log, self.sources, self.clock, interval)
        self.markers = Markers(log, self.clock, values, self.edge_sample)
        self.out = {1: OutputStream(os.path.join(st, "stdout.log"), self.markers.on_line),
                    2: OutputStream(os.path.join(st, "stderr.log"))}
        self.pid = None
        self.exit = None  # {code, signal, rusage} once reaped
        self.inherited_hwm_kb = 0  # our own VmHWM when the payload started: its ru_maxrss includes it
        self.payload_ms = None  # when the payload ended (or was given up on)
        self.killed_by = None
        self.killed_at_ms = None
        self.pressure_at_kill = None
        self.marker_seen_at = -SLOW_MS
        self.since_uptime = 0.0  # kernel log lines older than this are about an earlier holder of a pid
        self.since_epoch = 0.0
        self.left = []
        self.oom_after = None
        self.cg_oom_after = None
        self.kernel_lines = []
        self.kernel_source = None

    def run(self, argv, cwd, extra_env=None):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        env = dict(os.environ)
        env.update(extra_env or {})  # the job spec's `env` (bundle header)
        env["PYTHONUNBUFFERED"] = "1"  # markers must arrive when printed
        self.since_uptime = float((read_text("/proc/uptime") or "0").split()[0])
        self.since_epoch = time.time()
        # The payload is our own child, spawned without a second interpreter (a Python start
        # costs an emulated Pi 3 a quarter of a second). The kernel carries a parent's
        # high-water mark into its child's ru_maxrss across fork and exec (the ru_maxrss
        # trap), so the payload's figure counts only where it is above ours (end_event).
        os.chdir(cwd)  # the worker needs no cwd of its own: its paths are absolute
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = spawn(list(argv), null, out_w, err_w, env=env, new_group=True)
        finally:
            for fd in (out_w, err_w, null):
                os.close(fd)
        # Read after the spawn: the child ran on our memory until its exec, so this is at
        # least what the kernel seeded its ru_maxrss with.
        self.inherited_hwm_kb = number_after(read_bytes("/proc/self/status") or b"", b"VmHWM:") or 0
        self.started(pid)
        self.pump({out_r: self.out[1], err_r: self.out[2]})
        for o in self.out.values():
            o.close()
        self.finish()

    def started(self, pid):
        self.pid = pid
        self.clock.start()
        self.sampler.track(pid)
        with open(os.path.join(self.st, "payload.json"), "w") as fh:
            fh.write(dumps({"pid": pid, "pgid": pid}))
        cg = self.sources
        self.log.emit({"type": "start", "pid": pid, "pgid": pid, "t": 0,
                       "cgroup": (cg.cg_kind + ":" + cg.cg_dir) if cg.cg_kind else None})
        self.sample(full=True)

    def reap(self):
        """Collect the payload's exit status and rusage once it has ended (never blocks)."""
        try:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: it has ended, how is not known
            self.payload_ms = self.clock.rel()
            self.exit = {"code": None, "signal": None, "rusage": None}
            return
        if pid == 0:
            return
        self.payload_ms = self.clock.rel()
        self.exit = {"code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                     "signal": signame(os.WTERMSIG(status)) if os.WIFSIGNALED(status) else None,
                     "rusage": None if ru is None else {
                         "maxrssKb": ru.ru_maxrss, "utimeMs": int(ru.ru_utime * 1000),
                         "stimeMs": int(ru.ru_stime * 1000), "majflt": ru.ru_majflt}}

    def pump(self, streams):
        """Until the payload has ended and its pipes closed: read its output, sample it, kill it when due."""
        open_fds = list(streams)
        next_sample = mono_ms()
        exited_at = None
        closed_at = None
        while open_fds or self.exit is None:
            now = mono_ms()
            if exited_at is not None and now - exited_at > 1000:
                self.killpg()  # something of the group still holds the pipes
                break
            if self.exit is not None:
                timeout = self.interval / 1000.0
            else:
                timeout = max(0.0, (next_sample - now) / 1000.0)
                if self.killed_by is None:
                    timeout = min(timeout, max(0.0, (self.deadline - now) / 1000.0))
                if not open_fds and closed_at is not None and now - closed_at < 100:
                    timeout = min(timeout, 0.005)  # its pipes closed: it is exiting, so look again soon
            ready = []
            if open_fds:
                try:
                    ready, _, _ = select.select(open_fds, [], [], timeout)
                except InterruptedError:
                    pass
            else:
                time.sleep(timeout)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    open_fds.remove(fd)
                    os.close(fd)
                    if not open_fds:
                        closed_at = mono_ms()
                else:
                    streams[fd].feed(data)
            if self.exit is None:
                self.reap()
                if self.exit is not None:
                    exited_at = mono_ms()
                    continue
                now = mono_ms()
                if now >= next_sample:
                    self.sample()
                    next_sample = max(next_sample + self.interval, now + self.interval / 4)
                self.kill_if_due(now)
        for fd in open_fds:
            os.close(fd)
        if self.exit is None:
            self.reap()

    def sample(self, full=False):
        got = self.sampler.sample(full)
        if got:
            self.markers.observe(*got)

    def edge_sample(self):
        self.sample(full=True)
        return self.sampler.peak["hwm"]

    # --- killing

    def kill_if_due(self, now):
        if self.killed_by is not None:
            return
        if now >= self.deadline:
            self.kill("deadline")
        elif now - self.marker_seen_at >= SLOW_MS:
            self.marker_seen_at = now
            if os.path.exists(self.kill_marker):
                self.kill("controller")

    def kill(self, who):
        self.sample(full=True)
        self.pressure_at_kill = self.sampler.pressure()
        self.killpg()
        now = self.clock.rel()
        self.killed_by = who
        # `monitor.py kill` kills the group itself, usually before we see its marker.
        self.killed_at_ms = min(now, self.marker_ms()) if who == "controller" else now

    def marker_ms(self):
        """When `monitor.py kill` asked (it writes the wall time into its marker), in payload ms."""
        try:
            return max(0, self.clock.rel_epoch(float(read_text(self.kill_marker) or "")))
        except ValueError:
            return self.clock.rel()

    def killpg(self):
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def group_alive(self):
        """Pids still in the payload's process group or tree."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            # No process left in the group: only a descendant that left it could remain (a slow Pi
            # is spared the walk over every process otherwise).
            if not any(alive(p) for p in self.sampler.tree if p != self.pid):
                return []
        except OSError:
            pass
        return [p for p, f in scan_proc() if f[0] != b"Z" and (int(f[2]) == self.pid or p in self.sampler.tree)]

    def finish(self):
        """The facts after the payload ended: who killed it and when, what was
        left of its group (killed now), the OOM counters and kernel lines."""
        ex = self.exit
        if self.payload_ms is None:
            self.payload_ms = self.clock.rel()
        if self.killed_by is None and os.path.exists(self.kill_marker):
            # `monitor.py kill` struck between two looks. It killed the payload only if that died
            # of SIGKILL after the request (or never reported how it ended), not if it ended first.
            at = self.marker_ms()
            if ex is None or (ex["signal"] == "KILL" and at <= self.payload_ms):
                self.killed_by, self.killed_at_ms = "controller", at
        # Leftovers of the group (background children) die with the job.
        left = self.group_alive() if self.pid else []
        for _ in range(50):
            if not left:
                break
            self.killpg()
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
            left = self.group_alive()
        self.left = left
        self.oom_after = self.sources.vmstat_oom_kills()
        self.cg_oom_after = self.sources.cgroup_oom_kills()
        if ex is not None and ex["signal"] == "KILL":
            # Gathered for any SIGKILL, even one the agent sent: which kill came first is for the controller to say.
            self.kernel_lines, self.kernel_source = kernel_oom_lines(
                sorted(self.sampler.tree), self.since_uptime, self.since_epoch, self.unavailable)
        self.markers.close(self.payload_ms, final_hwm=max(self.sampler.peak["hwm"], self.own_maxrss_kb()))

    def own_maxrss_kb(self):
        """The payload's ru_maxrss where it is its own (above our high-water mark, see run), else 0."""
        kb = ((self.exit or {}).get("rusage") or {}).get("maxrssKb") or 0
        return kb if kb > self.inherited_hwm_kb else 0


def end_event(unavailable, values, probe, runner=None, killed_by=None, agent_error=None):
    """The last event: every fact the controller decides the outcome from.
    Without a runner the payload never started and only the head is set;
    after an agent error only the head is set, as the rest may be what failed."""
    started = runner is not None and runner.pid is not None
    ev = {"type": "end", "unavailable": unavailable, "values": values, "probe": probe, "started": started}
    if agent_error is not None:
        ev["agentError"] = agent_error
        return ev
    if runner is None:
        ev.update({"killedBy": killed_by, "killedAtMs": None, "output": None})
        return ev
    s = runner.sampler
    ex = runner.exit or {"code": None, "signal": None, "rusage": None}
    hwm_peak = s.peak["hwm"]
    rusage_peak = runner.own_maxrss_kb()
    best = max([(hwm_peak, "vmhwm"), (rusage_peak, "rusage"), (s.peak["rss"], "sampled_rss")],
               key=lambda c: c[0])
    tails = {fd: runner.out[fd].kept() for fd in (1, 2)}
    ev.update({
        "pid": runner.pid, "pids": sorted(s.tree),
        "code": ex["code"], "signal": ex["signal"], "rusage": ex["rusage"],
        "payloadMs": runner.payload_ms, "deadlineFired": runner.killed_by == "deadline",
        "killedBy": runner.killed_by, "killedAtMs": runner.killed_at_ms,
        "pressure": runner.pressure_at_kill or s.pressure(),
        "oom": {"vmstatBefore": runner.sources.oom_before, "vmstatAfter": runner.oom_after,
                "cgroupBefore": runner.sources.cg_oom_before, "cgroupAfter": runner.cg_oom_after,
                "kernelLines": runner.kernel_lines, "kernelLogSource": runner.kernel_source},
        "memory": {"peakRssKb": best[0] or None, "peakMethod": best[1] if best[0] else None,
                   "peakAnonKb": s.peak["anon"] or None, "sampledPeakRssKb": s.peak["rss"] or None,
                   "hwmPeakKb": hwm_peak or None, "rusageMaxrssKb": rusage_peak or None,
                   "cgroupPeakKb": runner.sources.cgroup_peak_kb(s.peak["cg"]), "minAvailKb": s.peak["minAvail"],
                   "samples": runner.log.samples},
        "phases": runner.markers.phases, "left": runner.left,
        "stdoutTail": tails[1].decode("utf-8", "replace"),
        "stderrTail": tails[2].decode("utf-8", "replace"),
        "output": {"stdout": {"written": runner.out[1].written, "kept": len(tails[1])},
                   "stderr": {"written": runner.out[2].written, "kept": len(tails[2])}},
    })
    return ev


def run_probe(path, cwd, deadline, kill_marker):
    """The suite's requirement probe, run by this interpreter (the payload's)
    in a forked child in its own session, so no second Python starts: {ok,
    message, killedBy}. killedBy is set when the agent killed it on purpose
    (deadline passed, or the controller's kill request); ok is then False, and
    that says nothing about the device."""
    t0 = mono_ms()
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as e:
        os.close(r)
        os.close(w)
        return {"ok": False, "message": "probe could not start: %s" % e, "killedBy": None}
    if pid == 0:
        os._exit(probe_child(path, cwd, r, w))
    os.close(w)
    out, who = b"", None
    while True:
        try:
            ready, _, _ = select.select([r], [], [], 0.2)
        except InterruptedError:
            ready = []
        if ready:
            data = os.read(r, 65536)
            if not data:
                break  # the probe (and whatever it forked) closed its output: done
            out += data
            continue
        who = "deadline" if mono_ms() > deadline else "controller" if os.path.exists(kill_marker) else None
        if who is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            break
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if who is not None:
        ms = mono_ms() - t0
        if who == "deadline":
            msg = "probe did not finish before the deadline (%d ms)" % ms
        else:
            msg = "probe killed on the controller's request after %d ms" % ms
        return {"ok": False, "message": msg, "killedBy": who}
    code = exit_code(status)
    text = out.decode("utf-8", "replace").strip()
    last = text.splitlines()[-1] if text else ""
    if code == 0:
        return {"ok": True, "message": last or "ok", "killedBy": None}
    how = "exit %d" % code if code > 0 else "signal " + signame(-code)
    return {"ok": False, "message": (last or "probe failed") + " (" + how + ")", "killedBy": None}


def probe_child(path, cwd, r, w):
    """In the forked child: run the probe as `python3 PATH` would, output to `w`. Returns the exit code."""
    code = 1
    try:
        os.setsid()
        os.close(r)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(null)
        os.close(w)
        os.chdir(cwd)
        ensure_site()  # the probe looks modules up as the payload's interpreter would
        sys.argv = [path]
        sys.path[0] = os.path.dirname(path)
        with open(path, "rb") as f:
            source = f.read()
        exec(compile(source, path, "exec"), {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            sys.stderr.write("%s\n" % (e.code,))
    except BaseException:
        import traceback
        traceback.print_exc()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    return code & 0xFF


class Job(object):
    """One `monitor.py start`: hello, facts, the requirement probe, the payload, the end."""

    def __init__(self, a):
        self.a = a
        self.wd = os.path.abspath(a.workdir)
        self.st = os.path.join(self.wd, STATE)
        self.log = EventLog(os.path.join(self.st, "events.jsonl"))
        self.kill_marker = os.path.join(self.st, KILL_MARKER)
        self.interval = max(5.0, float(a.interval_ms))
        self.unavailable = []
        self.values = {}
        self.probe = None
        self.runner = None
        self.throttle_before = None
        self.foreign = []
        self.env = {}

    def run(self):
        a = self.a
        deadline = mono_ms() + float(a.deadline_s) * 1000.0
        self.log.emit({"type": "hello", "v": PROTOCOL, "agentPid": os.getpid(), "python": sys.version.split()[0],
                       "intervalMs": self.interval, "deadlineMs": int(float(a.deadline_s) * 1000),
                       "epochMs": int(time.time() * 1000)})
        # One vcgencmd call: the facts' throttle state and the reading before the payload (the probe
        # between them takes milliseconds). A throttled Pi runs slower, and its times are then not comparable.
        throttle = read_throttled()
        if a.facts == "full":
            self.log.emit({"type": "facts", "facts": gather_facts(a.standin, throttle)})
        elif a.facts == "now":
            self.log.emit({"type": "factsNow", "facts": facts_now(throttle)})
        if a.probe:
            self.probe = run_probe(os.path.abspath(a.probe), self.wd, deadline, self.kill_marker)
            ev = {"type": "probe"}
            ev.update(self.probe)
            self.log.emit(ev)
            if not self.probe["ok"]:
                return self.end()
        if os.path.exists(self.kill_marker):
            return self.end(killed_by="controller")
        self.throttle_before = throttle_reading(throttle)
        self.foreign = foreign_agents(self.wd)
        self.runner = PayloadRunner(self.st, self.log, self.unavailable, self.values, self.interval, deadline)
        self.runner.run(a.argv, self.wd, self.env)
        return self.end()

    def end(self, killed_by=None):
        ev = end_event(self.unavailable, self.values, self.probe, self.runner, killed_by)
        if self.throttle_before is not None and ev.get("started"):
            (before, why), (after, _) = self.throttle_before, throttle_reading()
            ev["throttle"] = {"before": before, "after": after, "unavailable": why}
        if ev.get("started"):
            seen = {f["workdir"]: f for f in self.foreign + foreign_agents(self.wd)}
            ev["foreign"] = [seen[wd] for wd in sorted(seen)]
        self.log.emit(ev)

    def fail(self, err):
        """The agent itself broke: kill the payload, and still end, as the controller waits for that."""
        if self.runner is not None:
            self.runner.killpg()
        self.log.emit(end_event(self.unavailable, self.values, self.probe, self.runner,
                                agent_error="%s: %s" % (type(err).__name__, err)))


# ---------------------------------------------------------------- commands

def state_dir(wd):
    return os.path.join(os.path.abspath(wd), STATE)


def follow(wd, offset, wake=None, cleanup=False):
    """Copy events.jsonl from `offset` to stdout, whole lines only, until `end`.
    Exit 0 after `end`; 3 when the worker vanished without one. `wake` is a pipe
    the worker writes to on each event (and closes when it exits), so `start`
    passes events on at once; `attach` polls. With `cleanup`, remove the
    workdir after the end once the controller acknowledged it on stdin."""
    st = state_dir(wd)
    path = os.path.join(st, "events.jsonl")
    out = sys.stdout.buffer
    pid = None
    t0 = time.monotonic()
    while not os.path.exists(path):
        if time.monotonic() - t0 > 10:
            sys.stderr.write("monitor: no events file in %s\n" % st)
            return 3
        wake = wait_for(wake, 0.02)
    with open(path, "rb") as f:
        f.seek(offset)
        buf = b""
        quiet = 0
        gone = False  # the worker was found dead once: one more read before saying so
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
                            wake = wait_for(wake, 0.01)  # so no process of the job outlives `start`
                        if cleanup:
                            clean_after_ack(wd)
                        return 0
                continue
            if pid is None:
                pid = read_pid(st)
            quiet += 1
            if quiet % 2 == 0 and pid is not None and not alive(pid):
                if not gone:
                    # It may have written its end just before it went: read once more, through the
                    # top of the loop, where whole lines are passed on and the end is seen.
                    gone = True
                    continue
                # Its own last words (a traceback, if it had time for one) say why.
                err = (read_text(os.path.join(st, "agent.err")) or "").strip().splitlines()[-3:]
                sys.stderr.write("monitor: worker %d is gone and wrote no end event%s\n"
                                 % (pid, (": " + " | ".join(err)) if err else " (agent.err is empty)"))
                return 3
            # Samples arrive in batches; other events wake us at once. Waking less keeps the device quiet.
            wake = wait_for(wake, 1.0 if wake is not None else 0.25)


def wait_for(wake, timeout):
    """Sleep up to `timeout` s, or until the worker writes to `wake`. Returns `wake`, or None once the worker closed it."""
    if wake is None:
        time.sleep(timeout)
        return None
    try:
        ready, _, _ = select.select([wake], [], [], timeout)
    except InterruptedError:
        return wake
    if ready and not os.read(wake, 4096):
        os.close(wake)
        return None
    return wake


def clean_after_ack(wd):
    """Remove the job's workdir (and its run folder once empty) when the controller says on stdin that
    it has the end. A dropped session closes stdin without the word: the workdir then stays for a
    re-attach, and the controller cleans up itself."""
    got = b""
    try:
        while True:
            ready, _, _ = select.select([0], [], [], 30.0)
            data = os.read(0, 4096) if ready else b""
            if not data:
                break
            got += data
    except OSError:
        pass
    if not got.startswith(b"ok"):
        return
    remove_tree(os.path.abspath(wd))
    try:
        os.rmdir(os.path.dirname(os.path.abspath(wd)))  # refused while other jobs of the run remain
    except OSError:
        pass


def remove_tree(top):
    """shutil.rmtree(top, ignore_errors=True), without importing shutil. Symbolic links are removed, never followed."""
    for here, dirs, files in os.walk(top, topdown=False):
        for n in files + dirs:
            p = os.path.join(here, n)
            try:
                if n in dirs and not os.path.islink(p):
                    os.rmdir(p)
                else:
                    os.unlink(p)
            except OSError:
                pass
    try:
        os.rmdir(top)
    except OSError:
        pass


def read_pid(st):
    text = read_text(os.path.join(st, "worker.pid"))
    return int(text) if text and text.strip().isdigit() else None


def read_bundle_header(stream):
    """The bundle's header: a line `hil-bundle 1 FILES ENVS`, then a line `MODE SIZE PATH`
    per file (mode in octal) and, per environment variable, a line `LENGTH NAME` and
    the value's LENGTH bytes. Lines and lengths, not JSON: see the imports."""
    first = stream.readline().split()
    if len(first) != 4 or first[:2] != [b"hil-bundle", b"1"]:
        raise ValueError("not a version 1 bundle header: %r" % b" ".join(first)[:80])
    files, env = [], {}
    for _ in range(int(first[2])):
        mode, size, rel = stream.readline().rstrip(b"\n").split(b" ", 2)
        files.append((rel.decode("utf-8"), int(mode, 8), int(size)))
    for _ in range(int(first[3])):
        size, name = stream.readline().rstrip(b"\n").split(b" ", 1)
        value = stream.read(int(size))
        if len(value) != int(size):
            raise ValueError("bundle cut short in the value of %s" % name.decode("utf-8", "replace"))
        env[name.decode("utf-8")] = value.decode("utf-8")
    return {"files": files, "env": env}


def unpack(wd, stream):
    """The payload from the controller, after the agent on stdin: the header
    (read_bundle_header), then the files' bytes in its order. Returns the header."""
    header = read_bundle_header(stream)
    made = set()
    for rel, mode, size in header.get("files", []):
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts or "" in parts:
            raise ValueError("bad path in the bundle: %r" % rel)
        data = stream.read(size)
        if len(data) != size:
            raise ValueError("bundle cut short in %s (%d of %d bytes)" % (rel, len(data), size))
        path = os.path.join(wd, *parts)
        d = os.path.dirname(path)
        if d not in made:
            os.makedirs(d, mode=0o700, exist_ok=True)
            made.add(d)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode & 0o700)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
    return header


def cmd_start(a):
    st = state_dir(a.workdir)
    os.makedirs(st, mode=0o700, exist_ok=True)
    if os.path.exists(os.path.join(st, "events.jsonl")):
        sys.stderr.write("monitor: %s already holds a run; use attach\n" % a.workdir)
        return 2
    if not a.argv:
        sys.stderr.write("monitor: nothing to run (give the payload after --)\n")
        return 2
    if a.bundle:
        try:
            a.env = unpack(os.path.abspath(a.workdir), sys.stdin.buffer).get("env") or {}
        except (OSError, ValueError) as e:
            sys.stderr.write("monitor: cannot unpack the payload: %s\n" % e)
            return DEPLOY_FAILED
    sys.stdout.flush()
    wake_r, wake_w = os.pipe()
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        # The worker: no fd of the SSH session may stay open, or the channel never closes.
        os.close(wake_r)
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
            job = None
            try:
                job = Job(a)
                job.env = getattr(a, "env", None) or {}
                os.set_blocking(wake_w, False)
                job.log.wake_fd = wake_w
                job.run()
            except BaseException as e:
                import traceback
                traceback.print_exc()
                if job is not None:
                    job.fail(e)
                code = 1
        finally:
            os._exit(code)
    os.close(wake_w)
    os.waitpid(first, 0)
    return follow(a.workdir, 0, wake=wake_r, cleanup=a.cleanup)


def cmd_attach(a):
    return follow(a.workdir, a.offset, cleanup=a.cleanup)


def cmd_kill(a):
    st = state_dir(a.workdir)
    with open(os.path.join(st, KILL_MARKER), "w") as f:
        f.write(str(time.time()))
    info = read_text(os.path.join(st, "payload.json"))
    if info:
        import json
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
    print(dumps({"pgid": pgid, "workerGone": not (pid and alive(pid)), "ended": ended}))
    return 0


def cmd_facts(a):
    print(dumps(gather_facts(a.standin)))
    return 0


def on_path(tool):
    """Whether `tool` is an executable file in a folder of PATH, as execvp would find it."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        p = os.path.join(d or ".", tool)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return True
    return False


def read_throttled():
    """One `vcgencmd get_throttled`: (its text, as the facts keep it, or None; the number or None;
    why it could not be read, or None)."""
    if not on_path("vcgencmd"):  # off a Pi: no process started only to learn that, twice a job
        return None, None, "vcgencmd not found: not on PATH (%s)" % os.environ.get("PATH", os.defpath)
    rc, out, err = run_cmd(["vcgencmd", "get_throttled"])
    if rc is None:
        return None, None, "vcgencmd not found: " + err
    if rc != 0 or "=" not in out:
        why = (err or out).strip() or "exit %d" % rc
        if "permission" in why.lower() or "vchi" in why.lower() or "/dev/vcio" in why:
            why += " (is the user in the video group?)"
        return (out.strip() if rc == 0 else None), None, "vcgencmd get_throttled failed: " + why
    return out.strip(), int(out.split("=", 1)[1].strip(), 16), None


def throttled_now():
    """(`vcgencmd get_throttled` as a number, None) or (None, why it could not be read)."""
    _, value, why = read_throttled()
    return value, why


def throttle_reading(throttle=None):
    """`vcgencmd get_throttled` (or the read_throttled() given) and the SoC temperature now, and why
    vcgencmd could not be read (or None). The temperature comes from the kernel's thermal zone,
    which needs no group membership."""
    _, value, why = throttle if throttle is not None else read_throttled()
    temp = (read_text("/sys/class/thermal/thermal_zone0/temp") or "").strip()
    return {"throttled": value, "socTempC": round(int(temp) / 1000.0, 1) if temp.lstrip("-").isdigit() else None}, why


def cmd_health(a):
    """What the device can offer right now, for the controller's health gate: figures, no judgement."""
    disk_free_kb, disk_error = None, None
    try:
        if not os.path.isdir(a.root):
            os.makedirs(a.root, mode=0o755)
        st = os.statvfs(a.root)
        disk_free_kb = st.f_bavail * st.f_frsize // 1024
    except OSError as e:
        disk_error = str(e)
    meminfo = read_bytes("/proc/meminfo") or b""
    avail_kb = number_after(meminfo, b"MemAvailable:")
    limit_mb, free_mb = memory_limit((number_after(meminfo, b"MemTotal:") or 0) * 1024)
    if free_mb is not None:
        avail_kb = free_mb * 1024 if avail_kb is None else min(avail_kb, free_mb * 1024)
    thr, thr_error = throttled_now()
    print(dumps({"epochMs": int(time.time() * 1000), "memAvailKb": avail_kb, "memCapped": limit_mb is not None,
                 "diskFreeKb": disk_free_kb, "diskError": disk_error,
                 "throttled": thr, "throttledUnavailable": thr_error}))
    return 0


# Each command's options: name -> (attribute, kind, default); kind is str, float, int, a tuple of the
# values allowed, or a constant that the flag sets. `start` takes the payload's argv after its options.
OPTIONS = {
    "start": {"--workdir": ("workdir", str, None), "--deadline-s": ("deadline_s", float, None),
              "--interval-ms": ("interval_ms", float, 50.0), "--probe": ("probe", str, None),
              # full: every fact; now: only those that change (the controller has the rest from this run); none.
              "--facts": ("facts", ("full", "now", "none"), "full"), "--no-facts": ("facts", "none", "full"),
              "--standin": ("standin", str, None), "--bundle": ("bundle", True, False),
              "--cleanup": ("cleanup", True, False)},
    "attach": {"--workdir": ("workdir", str, None), "--offset": ("offset", int, 0), "--cleanup": ("cleanup", True, False)},
    "kill": {"--workdir": ("workdir", str, None)},
    "facts": {"--standin": ("standin", str, None)},
    "health": {"--root": ("root", str, None)},
}
REQUIRED = {"start": ("--workdir", "--deadline-s"), "attach": ("--workdir",), "kill": ("--workdir",), "health": ("--root",)}
COMMANDS = {"start": cmd_start, "attach": cmd_attach, "kill": cmd_kill, "facts": cmd_facts, "health": cmd_health}


class Args(object):
    pass


def parse_args(argv):
    """The command and its options, as argparse would read them (argparse itself costs a slow Pi
    a tenth of a second). Raises ValueError with what is wrong."""
    if not argv or argv[0] not in OPTIONS:
        raise ValueError("a command is needed, one of: %s" % ", ".join(sorted(OPTIONS)))
    cmd, spec = argv[0], OPTIONS[argv[0]]
    a = Args()
    a.cmd, a.argv = cmd, []
    for name, (dest, _, default) in sorted(spec.items()):
        if not hasattr(a, dest):
            setattr(a, dest, default)
    i = 1
    while i < len(argv):
        word = argv[i]
        if cmd == "start" and (word == "--" or not word.startswith("-")):
            a.argv = argv[i + 1:] if word == "--" else argv[i:]
            break
        name, eq, inline = word.partition("=")
        if name not in spec:
            raise ValueError("%s: unknown option %s" % (cmd, name))
        dest, kind, _ = spec[name]
        if not isinstance(kind, (type, tuple)):
            if eq:
                raise ValueError("%s: %s takes no value" % (cmd, name))
            setattr(a, dest, kind)
            i += 1
            continue
        if eq:
            value = inline
        elif i + 1 < len(argv):
            i += 1
            value = argv[i]
        else:
            raise ValueError("%s: %s needs a value" % (cmd, name))
        if isinstance(kind, tuple):
            if value not in kind:
                raise ValueError("%s: %s must be one of %s, not %r" % (cmd, name, ", ".join(kind), value))
            setattr(a, dest, value)
        else:
            try:
                setattr(a, dest, kind(value))
            except ValueError:
                raise ValueError("%s: %s needs a number, not %r" % (cmd, name, value))
        i += 1
    missing = [n for n in REQUIRED.get(cmd, ()) if getattr(a, spec[n][0]) is None]
    if missing:
        raise ValueError("%s: %s required" % (cmd, " and ".join(missing)))
    return a


def main(argv):
    try:
        a = parse_args(argv)
    except ValueError as e:
        sys.stderr.write("usage: monitor.py start|attach|kill|facts|health [options]\nmonitor.py: %s\n" % e)
        return 2
    return COMMANDS[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
