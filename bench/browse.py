"""Finding and bringing back single files, Lifeboat against restic 0.18, on the same data.

A copy of the kernel tree of the shared corpus (a real copy: hard links would change the
corpus's link counts, which the corpus round-trip test checks) is backed up by each tool, then edited (a line appended to every hundredth
file, ten files removed, ten added) and backed up again. Then, medians of --runs runs each:

  ls       every entry of the second backup (`backups ls --recursive` / `restic ls`)
  find     '*.c' across both backups (`backups find` / `restic find`)
  diff     the first backup against the second
  dump     the largest file to /dev/null
  restore  that one file under an empty folder (`restore --path` / `restore --include`)
  mount    reading that file through the tool's FUSE mount (time of the read alone)

Each figure is wall time and the peak RSS of the tool's process (for the mount, of the
mounted process, read before it is stopped).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

PW = "benchmark password"


def run(cmd, env, out=subprocess.DEVNULL):
    full = dict(os.environ, **env)
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=full, stdout=out, stderr=subprocess.PIPE, text=True)
    secs = time.monotonic() - start
    if p.returncode not in (0, 3):
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return secs, int(p.stderr.strip().splitlines()[-1])


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def edit(src, seed):
    """Appends a line to every hundredth file, removes ten, adds ten (by replacing files, so
    hard links to the corpus are never written through)."""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs)
    for i, p in enumerate(files[::100]):
        with open(p, "rb") as f:
            data = f.read()
        tmp = p + ".edit"
        with open(tmp, "wb") as f:
            f.write(data + f"/* edited {seed} {i} */\n".encode())
        os.replace(tmp, p)
    for p in files[7::len(files) // 10][:10]:
        os.remove(p)
    for i in range(10):
        with open(os.path.join(src, f"added-{seed}-{i}.c"), "w") as f:
            f.write(f"int added_{i}(void) {{ return {i}; }}\n")


class Lifeboat:
    """With a password, as restic is used (every command derives its key: Argon2id, 64 MiB);
    with `device_key`, as Lifeboat is set up by default (a key file of the device, nothing
    to derive)."""

    def __init__(self, work, binary, src, device_key=False):
        self.name = "lifeboat-device" if device_key else "lifeboat"
        self.binary, self.src = binary, src
        self.cfg = os.path.join(work, f"{self.name}.toml")
        self.pw = None if device_key else os.path.join(work, "lifeboat-password")
        if self.pw:
            with open(self.pw, "w") as f:
                f.write(PW + "\n")
        with open(self.cfg, "w") as f:
            f.write(f'[location.bench]\npath = "{work}/repo-{self.name}"\n[unit.kernel]\npaths = ["{src}"]\n')
        self.env = {k: os.path.join(work, f"{self.name}-{v}") for k, v in
                    [("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")]}
        self.snaps = []

    def cmd(self, *args):
        pw = ["--password-file", self.pw] if self.pw else []
        return [self.binary, "--config", self.cfg, *pw, "--quiet", *args]

    def backup(self):
        p = subprocess.run(self.cmd("backups", "new", "--json"), env=dict(os.environ, **self.env),
                           capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
        self.snaps.append(json.loads(p.stdout)["slug"])

    def ls(self):
        return run(self.cmd("backups", "ls", self.snaps[1], "--recursive"), self.env)

    def find(self):
        return run(self.cmd("backups", "find", "*.c"), self.env)

    def diff(self):
        return run(self.cmd("backups", "diff", self.snaps[0], self.snaps[1]), self.env)

    def dump(self, path):
        return run(self.cmd("backups", "dump", self.snaps[1], path), self.env)

    def restore(self, path, target):
        return run(self.cmd("backups", "restore", self.snaps[1], "--path", path, "--target", target), self.env)

    def mount(self, at):
        p = subprocess.Popen(self.cmd("mount", at), env=dict(os.environ, **self.env), stderr=subprocess.PIPE, text=True)
        p.stderr.readline()
        return p, os.path.join(at, "latest")

    def unmount(self, p, at):
        p.terminate()
        p.wait()


class Restic:
    name = "restic"

    def __init__(self, work, binary, src):
        self.binary, self.src = binary, src
        self.repo = os.path.join(work, "repo-restic")
        self.env = {"RESTIC_PASSWORD": PW, "RESTIC_CACHE_DIR": os.path.join(work, "restic-cache")}
        subprocess.run([binary, "-r", self.repo, "init", "-q"], env=dict(os.environ, **self.env), check=True,
                       stdout=subprocess.DEVNULL)
        self.snaps = []

    def cmd(self, *args):
        return [self.binary, "-r", self.repo, *args]

    def backup(self):
        p = subprocess.run(self.cmd("backup", "--json", "-q", self.src), env=dict(os.environ, **self.env),
                           capture_output=True, text=True, check=True)
        summary = [json.loads(line) for line in p.stdout.splitlines() if '"summary"' in line][-1]
        self.snaps.append(summary["snapshot_id"])

    def ls(self):
        return run(self.cmd("ls", self.snaps[1]), self.env)

    def find(self):
        return run(self.cmd("find", "*.c"), self.env)

    def diff(self):
        return run(self.cmd("diff", self.snaps[0], self.snaps[1]), self.env)

    def dump(self, path):
        return run(self.cmd("dump", self.snaps[1], path), self.env)

    def restore(self, path, target):
        return run(self.cmd("restore", self.snaps[1], "--include", path, "--target", target), self.env)

    def mount(self, at):
        p = subprocess.Popen(self.cmd("mount", at), env=dict(os.environ, **self.env),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        latest = os.path.join(at, "snapshots", "latest")
        while not os.path.exists(latest):
            if p.poll() is not None:
                sys.exit(f"restic mount ended: {p.stdout.read()}")
            time.sleep(0.05)
        return p, latest

    def unmount(self, p, at):
        subprocess.run(["fusermount3", "-u", at], check=False)
        p.wait()


def measure_mount(tool, at, path):
    os.makedirs(at, exist_ok=True)
    p, root = tool.mount(at)
    start = time.monotonic()
    with open(root + path, "rb") as f:
        while f.read(1 << 20):
            pass
    secs = time.monotonic() - start
    rss = peak_rss_kib(p.pid)
    tool.unmount(p, at)
    return secs, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifeboat", required=True)
    ap.add_argument("--restic", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", default="/var/tmp/lifeboat-bench-browse")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    src = os.path.join(a.work, "src", "kernel")
    os.makedirs(os.path.dirname(src))
    subprocess.run(["cp", "-a", "--reflink=auto", os.path.join(a.corpus, "kernel"), src], check=True)
    tools = [Lifeboat(a.work, a.lifeboat, src), Restic(a.work, a.restic, src), Lifeboat(a.work, a.lifeboat, src, True)]
    for t in tools:
        t.backup()
    edit(src, 1)
    for t in tools:
        t.backup()
    largest = max((os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs), key=os.path.getsize)
    print(f"largest file: {largest} ({os.path.getsize(largest)} bytes)", file=sys.stderr)
    results = {t.name: {} for t in tools}
    for run_no in range(a.runs):
        for t in tools:
            target = os.path.join(a.work, f"restored-{t.name}-{run_no}")
            os.makedirs(target)
            steps = {
                "ls": t.ls,
                "find": t.find,
                "diff": t.diff,
                "dump": lambda: t.dump(largest),
                "restore": lambda: t.restore(largest, target),
                "mount": lambda: measure_mount(t, os.path.join(a.work, f"mnt-{t.name}"), largest),
            }
            for step, fn in steps.items():
                results[t.name].setdefault(step, []).append(fn())
            restored = target + largest
            if os.path.getsize(restored) != os.path.getsize(largest):
                sys.exit(f"{t.name} restored {restored} wrongly")
    print("| measure | lifeboat | restic 0.18 | restic/lifeboat | lifeboat memory | restic memory | restic/lifeboat memory "
          "| lifeboat, device key | its memory | restic/it, time and memory |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for step in ["ls", "find", "diff", "dump", "restore", "mount"]:
        t = {n: statistics.median(s for s, _ in r[step]) for n, r in results.items()}
        m = {n: max(k for _, k in r[step]) / 1024 for n, r in results.items()}
        lt, rt, dt = t["lifeboat"], t["restic"], t["lifeboat-device"]
        lm, rm, dm = m["lifeboat"], m["restic"], m["lifeboat-device"]
        print(f"| {step} | {lt:.2f} s | {rt:.2f} s | {rt / lt:.2f}x | {lm:.0f} MiB | {rm:.0f} MiB | {rm / lm:.2f}x "
              f"| {dt:.2f} s | {dm:.0f} MiB | {rt / dt:.2f}x, {rm / dm:.2f}x |")
    shutil.rmtree(a.work, ignore_errors=True)


if __name__ == "__main__":
    main()
