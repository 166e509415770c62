"""Runs each tool through the same steps on the same data and prints medians and ratios.

Steps per tool and run: initial backup, unchanged re-backup, re-backup after editing 1 % of
the files, full restore into an empty folder; repository size; peak memory (max RSS of any
step). Every tool encrypts and compresses. Restore targets are kept until the end so that
deleting them does not slow the next tool's steps.
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


class Failed(SystemExit):
    """A measured command failed; `code` 137 is the kernel's out-of-memory kill."""

    def __init__(self, message, code):
        super().__init__(message)
        self.returncode = code


def run(cmd, env=None, cwd=None):
    """Runs a command; returns (seconds, peak RSS in KiB)."""
    full_env = dict(os.environ, **(env or {}))
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=full_env, cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    secs = time.monotonic() - start
    if p.returncode not in (0, 3):
        raise Failed(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}", p.returncode)
    rss = int(p.stderr.strip().splitlines()[-1])
    return secs, rss


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return total


class Tool:
    def __init__(self, name, work):
        self.name = name
        self.repo = os.path.join(work, f"repo-{name}")


class Lifeboat(Tool):
    def __init__(self, work, binary, paths):
        super().__init__("lifeboat", work)
        self.binary = binary
        self.cfg = os.path.join(work, "lifeboat.toml")
        self.pw = os.path.join(work, "password")
        self.env = {"XDG_STATE_HOME": os.path.join(work, "state"), "XDG_CONFIG_HOME": os.path.join(work, "config"),
                    "XDG_DATA_HOME": os.path.join(work, "data-home")}
        with open(self.pw, "w") as f:
            f.write(PW + "\n")
        with open(self.cfg, "w") as f:
            f.write(f'[location.bench]\npath = "{self.repo}"\n[unit.corpus]\npaths = {json.dumps(paths)}\n')
        self.last = None

    def base(self):
        return [self.binary, "--config", self.cfg, "--password-file", self.pw, "--quiet"]

    def init(self):
        pass

    def backup(self):
        out = os.path.join(os.path.dirname(self.repo), "lifeboat-last.json")
        cmd = ["sh", "-c", " ".join(f"'{a}'" for a in self.base() + ["backups", "new", "--json"]) + f" > {out}"]
        r = run(cmd, self.env)
        with open(out) as f:
            self.last = json.load(f)["slug"]
        return r

    def restore(self, target):
        return run(self.base() + ["backups", "restore", self.last, "--target", target], self.env)


class Restic(Tool):
    def __init__(self, work, paths, name="restic", binary="restic"):
        super().__init__(name, work)
        self.paths, self.binary = paths, binary
        self.env = {"RESTIC_PASSWORD": PW, "RESTIC_CACHE_DIR": os.path.join(work, f"{name}-cache")}

    def init(self):
        run([self.binary, "-r", self.repo, "init", "-q"], self.env)

    def backup(self):
        return run([self.binary, "-r", self.repo, "backup", "-q"] + self.paths, self.env)

    def restore(self, target):
        return run([self.binary, "-r", self.repo, "restore", "latest", "--target", target, "-q"], self.env)


class Rustic(Tool):
    def __init__(self, work, paths):
        super().__init__("rustic", work)
        self.paths = paths
        self.env = {"RUSTIC_PASSWORD": PW, "RUSTIC_CACHE_DIR": os.path.join(work, "rustic-cache"), "RUSTIC_NO_PROGRESS": "true"}

    def init(self):
        run(["rustic", "-r", self.repo, "init"], self.env)

    def backup(self):
        return run(["rustic", "-r", self.repo, "backup"] + self.paths, self.env)

    def restore(self, target):
        return run(["rustic", "-r", self.repo, "restore", "latest", target], self.env)


class Borg(Tool):
    def __init__(self, work, paths):
        super().__init__("borg", work)
        self.paths = paths
        self.n = 0
        self.env = {"BORG_PASSPHRASE": PW, "BORG_BASE_DIR": os.path.join(work, "borg-base"),
                    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes"}

    def init(self):
        run(["borg", "init", "-e", "repokey-blake2", self.repo], self.env)

    def backup(self):
        self.n += 1
        return run(["borg", "create", "--compression", "zstd,3", f"{self.repo}::b{self.n}"] + self.paths, self.env)

    def restore(self, target):
        os.makedirs(target, exist_ok=True)
        return run(["borg", "extract", f"{self.repo}::b{self.n}"], self.env, cwd=target)


def edit_one_percent(files, tag):
    for f in files[::100]:
        with open(f, "ab") as fh:
            fh.write(f"\nedited by the benchmark: {tag}\n".encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifeboat", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/var/tmp/lifeboat-bench")
    ap.add_argument("--parts", default="kernel,photos,music,db")
    ap.add_argument("--tools", default="lifeboat,restic,restic-0.18,borg,rustic")
    ap.add_argument("--restic-018", default="/var/tmp/lifeboat-peers/restic-0.18/usr/bin/restic",
                    help="restic 0.18 (../shared/peers/restic-0.18 installs it); the system's restic is 0.14")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()

    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    data = os.path.join(a.work, "data")
    os.makedirs(data)
    print(f"copying the corpus ({a.parts}) to {data}", file=sys.stderr)
    for part in a.parts.split(","):
        subprocess.run(["cp", "-a", os.path.join(a.corpus, part), data], check=True)
    paths = [os.path.join(data, p) for p in a.parts.split(",")]
    files = sorted(os.path.join(d, f) for p in paths for d, _, fs in os.walk(p) for f in fs
                   if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)))
    subprocess.run(["sh", "-c", f"find {data} -type f -print0 | xargs -0 cat > /dev/null"], check=True)

    metrics = ["backup", "unchanged", "edited", "restore", "size", "memory"]
    results = {t: {m: [] for m in metrics} for t in a.tools.split(",")}
    for r in range(a.runs):
        for name in a.tools.split(","):
            work = os.path.join(a.work, f"run{r}")
            os.makedirs(work, exist_ok=True)
            tool = {"lifeboat": lambda: Lifeboat(work, a.lifeboat, paths), "restic": lambda: Restic(work, paths),
                    "restic-0.18": lambda: Restic(work, paths, "restic-0.18", a.restic_018),
                    "borg": lambda: Borg(work, paths), "rustic": lambda: Rustic(work, paths)}[name]()
            tool.init()
            t1, m1 = tool.backup()
            t2, m2 = tool.backup()
            edit_one_percent(files, f"{name} run {r}")
            t3, m3 = tool.backup()
            subprocess.run(["sync"], check=True)
            target = os.path.join(work, f"restore-{name}")
            t4, m4 = tool.restore(target)
            size = du(tool.repo)
            res = results[name]
            for m, v in zip(metrics, [t1, t2, t3, t4, size, max(m1, m2, m3, m4)]):
                res[m].append(v)
            print(f"run {r + 1} {name}: backup {t1:.2f}s unchanged {t2:.2f}s edited {t3:.2f}s restore {t4:.2f}s "
                  f"size {size / 2**20:.0f} MiB memory {max(m1, m2, m3, m4) / 1024:.0f} MiB", file=sys.stderr)
            subprocess.run(["sync"], check=True)

    med = {t: {m: statistics.median(v) for m, v in ms.items()} for t, ms in results.items()}
    peers = [t for t in med if t != "lifeboat"]
    fmt = {"backup": "{:.2f} s", "unchanged": "{:.2f} s", "edited": "{:.2f} s", "restore": "{:.2f} s",
           "size": "{:.0f} MiB", "memory": "{:.0f} MiB"}
    scale = {"size": 2**20, "memory": 1024}
    head = ["metric", "lifeboat"] + peers + [f"{p}/lifeboat" for p in peers]
    rows = []
    for m in metrics:
        row = [m] + [fmt[m].format(med[t][m] / scale.get(m, 1)) for t in ["lifeboat"] + peers]
        row += [f"{med[p][m] / med['lifeboat'][m]:.2f}x" if med["lifeboat"][m] else "-" for p in peers]
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"medians of {a.runs} runs on {', '.join(a.parts.split(','))} ({len(files)} files); "
          "a ratio above 1 means the peer needs more (time, bytes, memory) than Lifeboat")
    for row in [head] + rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "medians": med}, f, indent=2)
    shutil.rmtree(a.work, ignore_errors=True)


if __name__ == "__main__":
    main()
