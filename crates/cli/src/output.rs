//! Standard output. A reader that stops early (`lifeboat backups list | head -1`) closes the
//! pipe: the write fails, and the command ends quietly the way other Unix tools do, with the
//! shell's code for a closed pipe, never a panic.

use std::os::fd::AsFd;

/// `println!` that returns the write's error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

/// `print!` that returns the write's error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)
    }};
}

pub(crate) use {out, outln};

/// The exit code of a command whose reader went away: 128 + SIGPIPE, as a shell reports a
/// program that a closed pipe ended.
pub const CLOSED_PIPE: i32 = 141;

/// Whether standard output is a pipe or socket that nobody reads any more. Asked only after a
/// command failed, so that a closed output is told apart from a location's broken connection
/// (both are "broken pipe" errors).
pub fn stdout_closed() -> bool {
    let stdout = std::io::stdout();
    let mut fds = [nix::poll::PollFd::new(stdout.as_fd(), nix::poll::PollFlags::empty())];
    matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0].revents().is_some_and(|r| r.intersects(nix::poll::PollFlags::POLLERR | nix::poll::PollFlags::POLLHUP))
}
