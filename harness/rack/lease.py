# pi-hil device lease: one controller at a time per device, without a server.
#
# Runs where the lease lives (on the device over SSH, or on this host for
# QEMU and local devices) as `python3 -c <this file> OP LEASE_DIR JSON`.
# Python 3.7+, standard library only. Every operation holds an exclusive
# flock on LEASE_DIR/lease.lock for the few milliseconds it reads and writes
# lease.json, so two controllers never both win. Expiry is judged by the
# clock of the machine that holds the lease, so controllers with skewed
# clocks still agree. Prints one JSON object.
import fcntl
import json
import os
import shutil
import signal
import sys
import time

DAY_S = 86400


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save(path, lease):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(lease, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def belongs_to(pid, wd):
    """True when the process still runs in (or names) the job's workdir: a pid may have been reused since."""
    try:
        if os.readlink("/proc/%d/cwd" % pid).startswith(wd):
            return True
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return wd.encode() in f.read()
    except OSError:
        return False


def kill_jobs(run_dir):
    """Kill what is left of a dead holder's jobs (agent worker, payload group) and remove its workdir."""
    killed = []
    if not os.path.isdir(run_dir):
        return killed
    for job in sorted(os.listdir(run_dir)):
        wd = os.path.join(run_dir, job)
        pgid = (load(os.path.join(wd, ".hil", "payload.json")) or {}).get("pgid")
        try:
            with open(os.path.join(wd, ".hil", "worker.pid")) as f:
                worker = int(f.read().strip() or 0)
        except (OSError, ValueError):
            worker = 0
        # The worker first, so it cannot start anything new; then the payload's whole group.
        for pid, group in ((worker, False), (pgid, True)):
            if pid and belongs_to(pid, wd):
                try:
                    (os.killpg if group else os.kill)(pid, signal.SIGKILL)
                    killed.append({"job": job, "pid": pid, "group": group})
                except OSError:
                    pass
    shutil.rmtree(run_dir, ignore_errors=True)
    return killed


def sweep(root, keep_run):
    """Remove pi-hil run folders older than a day that no live lease holds."""
    removed = []
    if not root or not os.path.isdir(root):
        return removed
    now = time.time()
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name == keep_run or name.startswith(".") or not os.path.isdir(path):
            continue
        # Only folders that look like pi-hil run folders: <date>-<time>-<hex>.
        parts = name.split("-")
        if len(parts) != 3 or not all(p.isalnum() for p in parts):
            continue
        try:
            if now - os.stat(path).st_mtime > DAY_S:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(name)
        except OSError:
            pass
    return removed


def main(argv):
    op, lease_dir, arg = argv[1], argv[2], json.loads(argv[3])
    os.makedirs(lease_dir, mode=0o700, exist_ok=True)
    path = os.path.join(lease_dir, "lease.json")
    with open(os.path.join(lease_dir, "lease.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = time.time()
        lease = load(path)
        live = lease is not None and lease.get("expiresAt", 0) > now
        mine = lease is not None and lease.get("id") == arg.get("id")
        # A lease broken by force leaves only word of it, which names no holder.
        out = {"now": now, "holder": lease if lease is not None and "runId" in lease else None, "live": live}
        if op == "acquire":
            if live and not mine:
                out["ok"] = False
            else:
                out["ok"] = True
                if lease is not None and not live and not mine and lease.get("runId"):
                    # The holder stopped renewing: it died or lost the network. Its jobs must not share the device.
                    out["tookOver"] = lease
                    out["killed"] = kill_jobs(os.path.join(lease.get("workdirRoot") or "/nonexistent", lease.get("runId") or "-"))
                new = dict(arg["holder"], id=arg["id"], acquiredAt=now, expiresAt=now + arg["ttlS"])
                save(path, new)
                out["lease"] = new
                out["swept"] = sweep(arg["holder"].get("workdirRoot"), arg["holder"].get("runId"))
        elif op == "renew":
            # A lease that vanished (the device rebooted and its /tmp went with it) or expired
            # while no one else took it is taken again: the holder never stopped holding it.
            broken = lease is not None and lease.get("brokenId") == arg.get("id")
            out["ok"] = mine or (not live and not broken)
            if out["ok"]:
                renewed = dict(lease) if mine else dict(arg["holder"], id=arg["id"], acquiredAt=now)
                renewed["expiresAt"] = now + arg["ttlS"]
                save(path, renewed)
                out["retaken"] = not mine
        elif op == "release":
            out["ok"] = lease is not None and (mine or arg.get("force", False))
            if out["ok"] and mine:
                os.remove(path)
            elif out["ok"]:
                # Broken by force: leave word, so its holder learns it lost the lease instead of taking it again.
                save(path, {"id": "broken", "brokenId": lease.get("id"), "expiresAt": 0})
        elif op == "show":
            out["ok"] = True
        else:
            out = {"ok": False, "error": "unknown operation " + op}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
