"""Lifeboat and restic 0.18 side by side where the local table does not look: over a network
(S3 and SFTP, directly and behind a relay that delays each direction), on many small files,
and on one core in 128 MiB (a Raspberry Pi's budget).

Every server listens on 127.0.0.1 with a free port: `rclone serve s3` on a folder, OpenSSH's
sshd with a fresh host key and client key. The relay is in this file: it delays every byte by
the same time in each direction (so a request and its answer cost one round trip more, while
the stream keeps its bandwidth). Steps per tool and run: initial backup, unchanged re-backup,
full restore into an empty folder; peak memory is the highest of the three. Each run starts
from an empty repository and an empty cache; the cache is kept between the run's steps, as on
a device.

Restores go to a tmpfs (/dev/shm) except in the one-core row (its memory cgroup would be
charged for a tmpfs's pages): on ext4, creating files for minutes after many were deleted
(each run deletes its restores and repositories) scans the recently freed inodes
(`recently_deleted` in ext4's inode allocator), and a restore of 11,000 files then takes
1.7 s or 5 s by the luck of what was deleted before it, for either tool.
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

from bench import PW, Failed, run

S3_KEY, S3_SECRET = "bench-access-key", "bench-secret-key-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, proc, what):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on port {port}")


class Relay:
    """A TCP relay on 127.0.0.1 that delays each direction by `delay` seconds."""

    def __init__(self, target, delay):
        self.target, self.delay = target, delay
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait()

    def _serve(self, started):
        asyncio.set_event_loop(self.loop)

        async def main():
            server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            started.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True)

    async def _pump(self, reader, writer):
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(256 * 1024)
                queue.put_nowait((time.monotonic() + self.delay, data or None))
                if not data:
                    break
        finally:
            await sender


class Servers:
    def __init__(self, work, delay):
        self.work = work
        self.procs = []
        # S3: rclone serving a folder; each top-level folder is a bucket.
        self.s3_root = os.path.join(work, "s3")
        os.makedirs(os.path.join(self.s3_root, "bench"))
        self.s3_port = free_port()
        p = subprocess.Popen(["rclone", "serve", "s3", "--addr", f"127.0.0.1:{self.s3_port}", "--auth-key",
                              f"{S3_KEY},{S3_SECRET}", "--config", "/dev/null", self.s3_root],
                             stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "rclone.log"), "w"))
        self.procs.append(p)
        wait_for(self.s3_port, p, "rclone serve s3")
        # SFTP: sshd with its own host key, logging in this user with a fresh key.
        ssh = os.path.join(work, "ssh")
        os.makedirs(ssh)
        host_key, self.key = os.path.join(ssh, "host_key"), os.path.join(ssh, "client_key")
        for k in (host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
        shutil.copy(self.key + ".pub", os.path.join(ssh, "authorized_keys"))
        self.ssh_port = free_port()
        config = os.path.join(ssh, "sshd_config")
        with open(config, "w") as f:
            f.write(f"Port {self.ssh_port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                    f"AuthorizedKeysFile {ssh}/authorized_keys\nPidFile {ssh}/sshd.pid\n"
                    "Subsystem sftp internal-sftp\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n")
        os.makedirs("/run/sshd", exist_ok=True)
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        p = subprocess.Popen([sshd, "-D", "-e", "-f", config], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(ssh, "sshd.log"), "w"))
        self.procs.append(p)
        wait_for(self.ssh_port, p, "sshd")
        with open(host_key + ".pub") as f:
            self.host_pub = " ".join(f.read().split()[:2])
        self.user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        self.relays = {"s3": Relay(self.s3_port, delay), "sftp": Relay(self.ssh_port, delay)}

    def port(self, kind, delayed):
        if delayed:
            return self.relays[kind].port
        return self.s3_port if kind == "s3" else self.ssh_port

    def known_hosts(self, port):
        path = os.path.join(self.work, "ssh", f"known_hosts_{port}")
        with open(path, "w") as f:
            f.write(f"[127.0.0.1]:{port} {self.host_pub}\n")
        return path

    def stop(self):
        for p in self.procs:
            p.terminate()
            p.wait()


class Lifeboat:
    name = "lifeboat"

    def __init__(self, binary, work, paths, location, wrap):
        self.binary, self.wrap = binary, wrap
        self.cfg = os.path.join(work, "lifeboat.toml")
        self.pw = os.path.join(work, "password")
        self.out = os.path.join(work, "lifeboat-last.json")
        self.env = {k: os.path.join(work, v) for k, v in
                    [("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data-home"),
                     ("XDG_CACHE_HOME", "cache")]}
        with open(self.pw, "w") as f:
            f.write(PW + "\n")
        with open(self.cfg, "w") as f:
            f.write(f"[location.bench]\n{location}\n[unit.corpus]\npaths = {json.dumps(paths)}\n")
        self.last = None

    def base(self):
        return self.wrap + [self.binary, "--config", self.cfg, "--password-file", self.pw, "--quiet"]

    def init(self):
        pass

    def backup(self):
        cmd = ["sh", "-c", " ".join(f"'{a}'" for a in self.base() + ["backups", "new", "--json"]) + f" > {self.out}"]
        r = run(cmd, self.env)
        with open(self.out) as f:
            self.last = json.load(f)["slug"]
        return r

    def restore(self, target):
        return run(self.base() + ["backups", "restore", self.last, "--target", target], self.env)


class Restic:
    name = "restic-0.18"

    def __init__(self, binary, work, paths, repo, options, wrap):
        self.binary, self.paths, self.repo, self.options, self.wrap = binary, paths, repo, options, wrap
        self.env = {"RESTIC_PASSWORD": PW, "RESTIC_CACHE_DIR": os.path.join(work, "restic-cache"),
                    "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}

    def cmd(self, *args):
        return self.wrap + [self.binary, "-r", self.repo] + self.options + list(args)

    def init(self):
        return run(self.cmd("init", "-q"), self.env)

    def backup(self):
        return run(self.cmd("backup", "-q", *self.paths), self.env)

    def restore(self, target):
        return run(self.cmd("restore", "latest", "--target", target, "-q"), self.env)


def make_small_files(root, count):
    """`count` files of 1–4 KiB of varied text in folders of 1,000 (a maildir, a photo
    library's thumbnails, a node_modules)."""
    words = open(__file__, "rb").read().split()
    for i in range(count):
        d = os.path.join(root, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(d)
        n = 1024 + (i * 7919) % 3072
        body = b" ".join(words[(i + k) % len(words)] for k in range(n // 4))[:n]
        with open(os.path.join(d, f"f{i:06d}.txt"), "wb") as f:
            f.write(b"%d\n" % i + body)


class Cgroup:
    """A memory cgroup (v1 or v2) holding every step of the one-core row, and the taskset."""

    def __init__(self, limit):
        me = open("/proc/self/cgroup").read().splitlines()
        v1 = [line.split(":", 2)[2] for line in me if line.split(":")[1] == "memory"]
        if v1:
            base, limit_file = "/sys/fs/cgroup/memory" + v1[0], "memory.limit_in_bytes"
        else:
            base, limit_file = "/sys/fs/cgroup" + me[0].split(":", 2)[2], "memory.max"
        self.path = os.path.join(base, f"lifeboat-bench-{os.getpid()}")
        os.makedirs(self.path, exist_ok=True)
        with open(os.path.join(self.path, limit_file), "w") as f:
            f.write(str(limit))
        self.wrap = ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec taskset -c 0 "$@"', "--"]

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def median(values):
    """The median of the runs, or how many failed when any did."""
    failed = sum(v is None for v in values)
    if failed:
        return f"failed in {failed} of {len(values)}"
    return statistics.median(values)


STEPS = ("initial", "from empty", "unchanged", "restore", "memory")


def restore_root(work, row):
    """Where a row's restores go: a tmpfs with room to spare, else beside the repository."""
    shm = "/dev/shm"
    if row != "one-core" and os.path.isdir(shm) and shutil.disk_usage(shm).free > 4 << 30:
        return os.path.join(shm, f"lifeboat-bench-rows-{os.getpid()}")
    return work


def measure(tool, work, rows, row):
    """Initial, unchanged and restore of one tool. A step that fails (a peer killed by the
    memory cgroup, say) is recorded as failed, with what it had reached, and the run goes on."""
    figures = {}
    try:
        made = tool.init()
        figures["initial"], m1 = tool.backup()
        # From an empty location to a first backup: restic's `init` is a command of its own,
        # Lifeboat's first backup makes its repository (so its "initial" includes that).
        figures["from empty"] = figures["initial"] + (made[0] if made else 0.0)
        figures["unchanged"], m2 = tool.backup()
        subprocess.run(["sync"], check=True)
        os.makedirs(restore_root(work, row), exist_ok=True)
        target = os.path.join(restore_root(work, row), f"restore-{tool.name}")
        figures["restore"], m3 = tool.restore(target)
        shutil.rmtree(target, ignore_errors=True)
        figures["memory"] = max(m1, m2, m3)
    except Failed as e:
        why = "killed: out of memory" if e.returncode in (137, -9) else f"failed ({e.returncode})"
        print(f"{row} {tool.name}: {why} after {', '.join(figures) or 'nothing'}", file=sys.stderr)
    for k in STEPS:
        rows.setdefault(row, {}).setdefault(tool.name, {}).setdefault(k, []).append(figures.get(k))
    if len(figures) == len(STEPS):
        print(f"{row} {tool.name}: initial {figures['initial']:.2f}s unchanged {figures['unchanged']:.2f}s "
              f"restore {figures['restore']:.2f}s memory {figures['memory'] / 1024:.0f} MiB", file=sys.stderr)
    subprocess.run(["sync"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifeboat", required=True)
    ap.add_argument("--restic", required=True, help="restic 0.18")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/var/tmp/lifeboat-bench-rows")
    ap.add_argument("--rtt-ms", type=int, default=50, help="the relay's round trip")
    ap.add_argument("--small-files", type=int, default=300_000)
    ap.add_argument("--rows", default="s3,s3-delayed,sftp,sftp-delayed,small-files,one-core")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    wanted = a.rows.split(",")

    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    net_data = os.path.join(a.corpus, "small")
    servers = Servers(a.work, a.rtt_ms / 2000) if any(r.startswith(("s3", "sftp")) for r in wanted) else None
    small = os.path.join(a.work, "many-small-files")
    if "small-files" in wanted:
        print(f"writing {a.small_files} small files to {small}", file=sys.stderr)
        make_small_files(small, a.small_files)
    kernel = os.path.join(a.work, "kernel")
    if "one-core" in wanted:
        subprocess.run(["cp", "-a", os.path.join(a.corpus, "kernel"), kernel], check=True)
    cgroup = Cgroup(128 * 2**20) if "one-core" in wanted else None

    rows = {}
    try:
        for r in range(a.runs):
            for row in wanted:
                for name in ("lifeboat", "restic-0.18"):
                    work = os.path.join(a.work, f"run{r}-{row}-{name}")
                    os.makedirs(work)
                    wrap, paths = [], [net_data]
                    if row == "small-files":
                        paths = [small]
                    if row == "one-core":
                        wrap, paths = cgroup.wrap, [kernel]
                    if row.startswith(("s3", "sftp")):
                        kind = row.split("-")[0]
                        port = servers.port(kind, row.endswith("delayed"))
                        where = f"run{r}-{row}"
                        if kind == "s3":
                            endpoint = f"http://127.0.0.1:{port}"
                            location = (f'type = "s3"\nendpoint = "{endpoint}"\nbucket = "bench"\nroot = "{where}-lifeboat"\n'
                                        f'access_key_id = "{S3_KEY}"\nsecret_access_key = "{S3_SECRET}"\n')
                            repo, options = f"s3:{endpoint}/bench/{where}-restic", []
                        else:
                            folder = os.path.join(a.work, "sftp", f"{where}-{name}")
                            os.makedirs(folder)
                            known = servers.known_hosts(port)
                            location = (f'type = "sftp"\nhost = "127.0.0.1"\nport = {port}\nuser = "{servers.user}"\n'
                                        f'path = "{folder}"\nkey_file = "{servers.key}"\nknown_hosts = "{known}"\n')
                            repo = f"sftp:{servers.user}@127.0.0.1:{folder}"
                            options = ["-o", f"sftp.command=ssh -p {port} -i {servers.key} -o UserKnownHostsFile={known} "
                                       f"-o StrictHostKeyChecking=yes {servers.user}@127.0.0.1 -s sftp"]
                    else:
                        location = f'path = "{os.path.join(work, "repo")}"\n'
                        repo, options = os.path.join(work, "repo-restic"), []
                    tool = (Lifeboat(a.lifeboat, work, paths, location, wrap) if name == "lifeboat"
                            else Restic(a.restic, work, paths, repo, options, wrap))
                    measure(tool, work, rows, row)
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(restore_root(a.work, "any"), ignore_errors=True)
        if servers:
            servers.stop()
        if cgroup:
            cgroup.remove()

    labels = {"s3": "S3, direct", "s3-delayed": f"S3, {a.rtt_ms} ms", "sftp": "SFTP, direct",
              "sftp-delayed": f"SFTP, {a.rtt_ms} ms", "small-files": f"{a.small_files:,} small files",
              "one-core": "kernel tree, 1 core, 128 MiB"}
    print(f"medians of {a.runs} runs; S3 and SFTP rows on the corpus' small part; a ratio above 1 means "
          "restic 0.18 needs more (time, memory) than Lifeboat; initial: the first backup (Lifeboat's makes "
          "its repository, restic's init is not timed); from empty: restic's init and first backup")
    head = ["row", "step", "lifeboat", "restic 0.18", "restic/lifeboat"]
    out = []
    for row in wanted:
        for step in STEPS:
            lb, rs = (median(rows[row][t][step]) for t in ("lifeboat", "restic-0.18"))
            f = (lambda v: f"{v / 1024:.0f} MiB") if step == "memory" else (lambda v: f"{v:.2f} s")
            shown = [f(v) if isinstance(v, float) or isinstance(v, int) else v for v in (lb, rs)]
            ratio = f"{rs / lb:.2f}x" if isinstance(lb, (int, float)) and isinstance(rs, (int, float)) and lb else "-"
            out.append([labels[row], step, *shown, ratio])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *out)]
    for line in [head] + out:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)
    shutil.rmtree(a.work, ignore_errors=True)


if __name__ == "__main__":
    main()
