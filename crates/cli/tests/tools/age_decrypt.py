#!/usr/bin/env python3
"""Runs `age -d -o OUT IN` and types the passphrase at its prompt, as a person would: age
reads passphrases only from a terminal, so it gets one (a pseudo-terminal)."""
import os
import pty
import sys

passphrase, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("age", ["age", "-d", "-o", dst, src])
seen = b""
sent = False
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not sent and b"assphrase" in seen:
        os.write(fd, passphrase.encode() + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.stderr.write(seen.decode(errors="replace"))
sys.exit(code)
