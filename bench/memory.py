"""Memory against the number of files: each operation's time and peak RSS on N small files on
a tmpfs, for one or two Lifeboat binaries (an old and a new one, to see what a change did) and
restic 0.18 beside them, with the slope (bytes of peak RSS per file) between two sizes.

    python3 bench/memory.py --lifeboat target/release/lifeboat [--old OLD_BINARY] \
        [--restic /var/tmp/lifeboat-peers/restic-0.18/usr/bin/restic] \
        [--files 100000,1000000] [--runs 3] [--work /dev/shm/lifeboat-memory]

Steps per tool, size and run: first backup, unchanged backup, full restore into an empty
folder, a recursive listing of the backup, a find of one name pattern, a check, and a prune
after the first backup is forgotten. Files are 1–4 KiB of varied text in folders of 1,000
(bench/rows.py's small files). Each step is timed and its peak RSS read with /usr/bin/time.
Issue 47's goals: at 1 M files every peak at most 200 MiB (first backup 160 MiB).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rows import make_small_files  # noqa: E402

PW = "benchmark password"
STEPS = ("first backup", "unchanged backup", "restore", "ls --recursive", "find", "check", "prune")


def run(cmd, env, out=subprocess.DEVNULL):
    """Runs a command; returns (seconds, peak RSS in KiB)."""
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=dict(os.environ, **env),
                       stdout=out, stderr=subprocess.PIPE, text=True)
    secs = time.monotonic() - start
    if p.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return secs, int(p.stderr.strip().splitlines()[-1])


class Lifeboat:
    def __init__(self, name, binary, work, data):
        self.name, self.binary, self.work = name, binary, work
        self.cfg = os.path.join(work, "lifeboat.toml")
        self.pw = os.path.join(work, "password")
        self.env = {k: os.path.join(work, v) for k, v in
                    [("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config"),
                     ("XDG_DATA_HOME", "data-home"), ("XDG_CACHE_HOME", "cache")]}
        with open(self.pw, "w") as f:
            f.write(PW + "\n")
        with open(self.cfg, "w") as f:
            f.write(f'[location.bench]\npath = "{os.path.join(work, "repo")}"\n'
                    f'[unit.files]\npaths = {json.dumps([data])}\n')
        self.slugs = []

    def cmd(self, *args):
        return [self.binary, "--config", self.cfg, "--password-file", self.pw, "--quiet"] + list(args)

    def backup(self):
        out = os.path.join(self.work, "last.json")
        with open(out, "w") as f:
            r = run(self.cmd("backups", "new", "--json"), self.env, out=f)
        with open(out) as f:
            self.slugs.append(json.load(f)["slug"])
        return r

    def restore(self, target):
        return run(self.cmd("backups", "restore", self.slugs[-1], "--target", target), self.env)

    def ls(self):
        return run(self.cmd("backups", "ls", self.slugs[-1], "--recursive"), self.env)

    def find(self):
        return run(self.cmd("backups", "find", "f00042*.txt"), self.env)

    def check(self):
        return run(self.cmd("check"), self.env)

    def prune(self):
        run(self.cmd("backups", "remove", self.slugs[0]), self.env)
        return run(self.cmd("prune"), self.env)


class Restic:
    def __init__(self, name, binary, work, data):
        self.name, self.binary, self.data = name, binary, data
        self.repo = os.path.join(work, "repo")
        self.env = {"RESTIC_PASSWORD": PW, "RESTIC_CACHE_DIR": os.path.join(work, "cache")}
        run(self.cmd("init", "-q"), self.env)
        self.first = None

    def cmd(self, *args):
        return [self.binary, "-r", self.repo] + list(args)

    def backup(self):
        r = run(self.cmd("backup", "-q", self.data), self.env)
        if self.first is None:
            out = subprocess.run(self.cmd("snapshots", "--json"), env=dict(os.environ, **self.env),
                                 capture_output=True, text=True, check=True).stdout
            self.first = json.loads(out)[0]["short_id"]
        return r

    def restore(self, target):
        return run(self.cmd("restore", "latest", "--target", target, "-q"), self.env)

    def ls(self):
        return run(self.cmd("ls", "latest"), self.env)

    def find(self):
        return run(self.cmd("find", "f00042*.txt"), self.env)

    def check(self):
        return run(self.cmd("check", "-q"), self.env)

    def prune(self):
        run(self.cmd("forget", "-q", self.first), self.env)
        return run(self.cmd("prune", "-q"), self.env)


def measure(tool, work):
    figures = {"first backup": tool.backup(), "unchanged backup": tool.backup()}
    target = os.path.join(work, "restored")
    figures["restore"] = tool.restore(target)
    shutil.rmtree(target, ignore_errors=True)
    figures["ls --recursive"] = tool.ls()
    figures["find"] = tool.find()
    figures["check"] = tool.check()
    figures["prune"] = tool.prune()
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lifeboat", required=True)
    ap.add_argument("--old", help="an older Lifeboat binary to measure beside it")
    ap.add_argument("--restic", help="restic 0.18, measured beside it")
    ap.add_argument("--files", default="100000,1000000", help="sizes, comma-separated (the slope is between the first and last)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default="/dev/shm/lifeboat-memory")
    args = ap.parse_args()

    tools = [("lifeboat", Lifeboat, os.path.abspath(args.lifeboat))]
    if args.old:
        tools.append(("lifeboat-old", Lifeboat, os.path.abspath(args.old)))
    if args.restic:
        tools.append(("restic-0.18", Restic, args.restic))
    sizes = [int(s) for s in args.files.split(",")]
    results = {}  # (size, tool, step) -> [(secs, kib)]
    for size in sizes:
        data = os.path.join(args.work, f"data-{size}")
        if not os.path.isdir(data):
            print(f"making {size:,} files in {data}", file=sys.stderr)
            make_small_files(data, size)
        for run_no in range(args.runs):
            for name, kind, binary in tools:
                work = os.path.join(args.work, f"{name}-{size}")
                shutil.rmtree(work, ignore_errors=True)
                os.makedirs(work)
                figures = measure(kind(name, binary, work, data), work)
                shutil.rmtree(work, ignore_errors=True)
                for step, r in figures.items():
                    results.setdefault((size, name, step), []).append(r)
                print(f"{size:,} files, run {run_no + 1}, {name}: " +
                      ", ".join(f"{s} {t:.2f} s {k / 1024:.0f} MiB" for s, (t, k) in figures.items()),
                      file=sys.stderr)
        shutil.rmtree(data, ignore_errors=True)

    names = [t[0] for t in tools]
    print(f"Medians of {args.runs} runs: seconds and peak RSS (MiB); slope: peak RSS bytes a file "
          f"between {sizes[0]:,} and {sizes[-1]:,} files.\n")
    print("| files | step | " + " | ".join(f"{n} s | {n} MiB" for n in names) + " |")
    print("| --- | --- | " + " | ".join("--- | ---" for _ in names) + " |")
    for size in sizes:
        for step in STEPS:
            cells = []
            for n in names:
                rs = results[(size, n, step)]
                cells.append(f"{statistics.median(r[0] for r in rs):.2f} | "
                             f"{statistics.median(r[1] for r in rs) / 1024:.0f}")
            print(f"| {size:,} | {step} | " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        print("\n| step | " + " | ".join(f"{n} bytes a file" for n in names) + " |")
        print("| --- | " + " | ".join("---" for _ in names) + " |")
        for step in STEPS:
            cells = []
            for n in names:
                lo = statistics.median(r[1] for r in results[(sizes[0], n, step)])
                hi = statistics.median(r[1] for r in results[(sizes[-1], n, step)])
                cells.append(f"{(hi - lo) * 1024 / (sizes[-1] - sizes[0]):.0f}")
            print(f"| {step} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
