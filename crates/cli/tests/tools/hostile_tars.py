#!/usr/bin/env python3
"""Writes hostile tars, one per case, as a unit's content could be in a crafted backup file.
Usage: hostile_tars.py OUT_DIR ROOT OUTSIDE  (ROOT: the unit's folder inside the tar;
OUTSIDE: an absolute folder that must stay empty)."""
import io
import os
import sys
import tarfile

out_dir, root, outside = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out_dir, exist_ok=True)
climb = "../" * (root.count("/") + 8)


def entry(name, kind=tarfile.REGTYPE, data=b"", **extra):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o644
    for k, v in extra.items():
        setattr(info, k, v)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write(case, *entries, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(os.path.join(out_dir, case + ".tar"), "w", format=fmt) as t:
        t.addfile(*entry(root, tarfile.DIRTYPE))
        for info, data in entries:
            t.addfile(info, data)


write("absolute-path", entry(outside + "/evil", data=b"x"))
write("dot-dot", entry(root + "/" + climb + outside.lstrip("/") + "/evil", data=b"x"))
write("dot-dot-gnu", entry(root + "/" + climb + outside.lstrip("/") + "/evil", data=b"x"), fmt=tarfile.GNU_FORMAT)
write(
    "through-absolute-symlink",
    entry(root + "/link", tarfile.SYMTYPE, linkname=outside),
    entry(root + "/link/evil", data=b"x"),
)
write(
    "through-relative-symlink",
    entry(root + "/up", tarfile.SYMTYPE, linkname=climb + outside.lstrip("/")),
    entry(root + "/up/evil", data=b"x"),
)
write("hard-link-out", entry(root + "/passwd", tarfile.LNKTYPE, linkname="etc/passwd"))
write("hard-link-dot-dot", entry(root + "/passwd", tarfile.LNKTYPE, linkname=root + "/" + climb + "etc/passwd"))
write("device-node", entry(root + "/mem", tarfile.CHRTYPE, devmajor=1, devminor=1))
write("outside-the-unit", entry("etc/cron.d/evil", data=b"x"))

# A size far beyond what is there: the header says 1 TiB, 5 bytes follow.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    t.addfile(*entry(root, tarfile.DIRTYPE))
    info, _ = entry(root + "/huge")
    info.size = 1 << 40
    t.addfile(info)  # header only
raw = buf.getvalue()
with open(os.path.join(out_dir, "declared-size.tar"), "wb") as f:
    f.write(raw[: len(raw) - 1024] + b"small" + b"\0" * 1024)
