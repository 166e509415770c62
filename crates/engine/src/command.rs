//! Running a unit's commands (hooks, export, import) with a time limit, and reporting their
//! failure in one line.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Environment variables that hold secrets and never reach a child: the repository password,
/// and every variable a location's `"$VARIABLE"` secret named (added as they are read).
static SECRET_VARIABLES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Marks `name` as holding a secret: no hook, export or import sees it.
pub(crate) fn keep_from_children(name: &str) {
    let mut vars = SECRET_VARIABLES.lock().unwrap_or_else(|e| e.into_inner());
    if !vars.iter().any(|v| v == name) {
        vars.push(name.to_string());
    }
}

/// Removes every secret variable from what `cmd` inherits.
fn without_secrets(cmd: &mut Command) {
    cmd.env_remove("LIFEBOAT_PASSWORD");
    for v in SECRET_VARIABLES.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        cmd.env_remove(v);
    }
}

/// What a command is given.
pub(crate) struct Invocation<'a> {
    /// A shell command line (`sh -c`), or a program and its arguments.
    pub program: Program<'a>,
    pub dir: Option<&'a Path>,
    pub unit: &'a str,
    pub home: &'a Path,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub timeout: Duration,
}

pub(crate) enum Program<'a> {
    Shell(&'a str),
    Args(&'a str, Vec<String>),
}

/// Runs the command to its end, or stops it at its time limit. Err holds a one-line reason
/// with the end of what it wrote on standard error.
pub(crate) fn run(inv: Invocation) -> Result<(), String> {
    let (mut cmd, shown) = match &inv.program {
        Program::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            (c, line.to_string())
        }
        Program::Args(prog, args) => {
            let mut c = Command::new(prog);
            c.args(args);
            (c, prog.to_string())
        }
    };
    if let Some(d) = inv.dir {
        cmd.env("LIFEBOAT_DIR", d).current_dir(d);
    }
    cmd.env("LIFEBOAT_UNIT", inv.unit).env("LIFEBOAT_HOME", inv.home);
    without_secrets(&mut cmd);
    cmd.stdin(inv.stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
    cmd.stdout(inv.stdout.map(Stdio::from).unwrap_or_else(Stdio::null));
    cmd.stderr(Stdio::piped());
    // Its own process group, so that a time limit stops everything it started (a shell's
    // children would otherwise keep running, and keep its output open).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| format!("`{shown}` could not start: {e}"))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let timed_out = rx.recv_timeout(inv.timeout).is_err();
    if timed_out {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
    let status = waiter.join().map_err(|_| "the command's waiter failed".to_string())?;
    let err = reader.join().unwrap_or_default();
    let tail = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    let tail = if tail.is_empty() { String::new() } else { format!(": {tail}") };
    if timed_out {
        return Err(format!("`{shown}` was stopped after {} s{tail}", inv.timeout.as_secs()));
    }
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{shown}` failed ({s}){tail}")),
        Err(e) => Err(format!("`{shown}` could not be waited for: {e}")),
    }
}
