#!/usr/bin/env python3
"""Restores of one backup by two Lifeboat binaries, side by side in one run (issue 42's "no
slower" check): a full restore into an empty folder, and an in-place restore over an unchanged
copy of the data (every file compared by content), each binary in turn, N runs, medians.

  bench/restore_compare.py --old OLD_BINARY --new NEW_BINARY --data DIR [--runs 3] [--restic RESTIC]

With --restic, restic (0.18: ../shared/peers/restic-0.18 installs it) backs up the same data and
restores it in place too (`--target /`, its default `--overwrite always`, which reads every
existing file to compare it), for the in-place row. Each time is printed as wall seconds and
the CPU seconds (user + system) the restore used, which a busy machine disturbs less.

Both binaries read the same repository (made by --new); the data is copied once to a folder the
in-place restores use.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

PW = "restore-compare"


def run(cmd, env):
    """Wall and CPU (user + system) seconds of one command."""
    before = os.times()
    start = time.monotonic()
    subprocess.run(cmd, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--restic", help="a restic binary to time the same in-place restore with")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="restore-compare-", dir="/var/tmp")
    try:
        live = os.path.join(work, "live")
        shutil.copytree(a.data, live, symlinks=True)
        cfg, pw = os.path.join(work, "lifeboat.toml"), os.path.join(work, "password")
        with open(pw, "w") as f:
            f.write(PW + "\n")
        with open(cfg, "w") as f:
            f.write(f'[location.bench]\npath = "{work}/repo"\n[unit.data]\npaths = {json.dumps([live])}\n')
        env = {"XDG_STATE_HOME": f"{work}/state", "XDG_CONFIG_HOME": f"{work}/config",
               "XDG_DATA_HOME": f"{work}/data-home"}

        def base(binary):
            return [binary, "--config", cfg, "--password-file", pw, "--quiet"]

        out = subprocess.run(base(a.new) + ["backups", "new", "--json"], env={**os.environ, **env},
                             check=True, capture_output=True, text=True).stdout
        slug = json.loads(out)["slug"]
        times = {("old", "target"): [], ("new", "target"): [], ("old", "in place"): [], ("new", "in place"): [],
                 ("restic", "in place"): []}
        restic_env = {"RESTIC_REPOSITORY": f"{work}/restic-repo", "RESTIC_PASSWORD": PW,
                      "RESTIC_CACHE_DIR": f"{work}/restic-cache"}
        if a.restic:
            subprocess.run([a.restic, "init", "-q"], env={**os.environ, **restic_env}, check=True)
            subprocess.run([a.restic, "backup", "-q", live], env={**os.environ, **restic_env}, check=True)
        for r in range(a.runs):
            if a.restic:
                times[("restic", "in place")].append(
                    run([a.restic, "restore", "-q", "latest", "--target", "/"], restic_env))
            for name, binary in (("old", a.old), ("new", a.new)):
                target = os.path.join(work, f"target-{name}-{r}")
                times[(name, "target")].append(run(base(binary) + ["backups", "restore", slug, "--target", target], env))
                shutil.rmtree(target)
                # In place over the unchanged data: everything is compared, nothing written.
                times[(name, "in place")].append(
                    run(base(binary) + ["backups", "restore", slug, "--no-safety-backup"], env))
        def med(key, i):
            return statistics.median(t[i] for t in times[key])

        for kind in ("target", "in place"):
            for i, what in ((0, "wall"), (1, "cpu")):
                old, new = med(("old", kind), i), med(("new", kind), i)
                runs = {n: ['%.2f' % t[i] for t in times[(n, kind)]] for n in ("old", "new")}
                print(f"restore ({kind}, {what}): old {old:.2f} s, new {new:.2f} s, new/old {new / old:.3f}  (runs {runs})")
        if a.restic:
            for i, what in ((0, "wall"), (1, "cpu")):
                rs, new = med(("restic", "in place"), i), med(("new", "in place"), i)
                runs = ['%.2f' % t[i] for t in times[("restic", "in place")]]
                print(f"restore (in place, {what}): restic {rs:.2f} s, new {new:.2f} s, restic/new {rs / new:.2f}  (restic runs {runs})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
