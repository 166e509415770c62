#!/usr/bin/env python3
"""Restores of one backup by two Lifeboat binaries, side by side in one run (issue 42's "no
slower" check): a full restore into an empty folder, and an in-place restore over an unchanged
copy of the data (every file compared by content), each binary in turn, N runs, medians.

  bench/restore_compare.py --old OLD_BINARY --new NEW_BINARY --data DIR [--runs 3]

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
    start = time.monotonic()
    subprocess.run(cmd, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=3)
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
        times = {("old", "target"): [], ("new", "target"): [], ("old", "in place"): [], ("new", "in place"): []}
        for r in range(a.runs):
            for name, binary in (("old", a.old), ("new", a.new)):
                target = os.path.join(work, f"target-{name}-{r}")
                times[(name, "target")].append(run(base(binary) + ["backups", "restore", slug, "--target", target], env))
                shutil.rmtree(target)
                # In place over the unchanged data: everything is compared, nothing written.
                times[(name, "in place")].append(
                    run(base(binary) + ["backups", "restore", slug, "--no-safety-backup"], env))
        for kind in ("target", "in place"):
            old, new = statistics.median(times[("old", kind)]), statistics.median(times[("new", kind)])
            print(f"restore ({kind}): old {old:.2f} s, new {new:.2f} s, new/old {new / old:.3f}  "
                  f"(runs old {['%.2f' % t for t in times[('old', kind)]]}, new {['%.2f' % t for t in times[('new', kind)]]})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
