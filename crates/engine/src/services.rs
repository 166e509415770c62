//! Applications stopped while their units are restored (`stop_while_restoring`): systemd
//! services and Docker or Podman containers. Only what runs is stopped, and exactly that is
//! started again afterwards, whatever became of the restore.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::unit::Unit;
use crate::{EngineError, EngineResult};

/// How long stopping or starting one service, or listing them, may take.
const TIMEOUT: Duration = Duration::from_secs(300);

/// What runs an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Manager {
    Systemd,
    Docker,
    Podman,
}

impl Manager {
    fn program(self) -> &'static str {
        match self {
            Manager::Systemd => "systemctl",
            Manager::Docker => "docker",
            Manager::Podman => "podman",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Manager::Systemd => "systemd service",
            Manager::Docker => "docker container",
            Manager::Podman => "podman container",
        }
    }
}

/// One entry of `stop_while_restoring`: `systemd:NAME` (a service; `*` allowed, `.service`
/// added when no suffix is given), `docker:NAME` or `podman:NAME` (a container by name; with
/// a `/`, the containers of an image, its tag included in what `*` matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePattern {
    pub manager: Manager,
    pub pattern: String,
}

impl ServicePattern {
    /// Reads `MANAGER:NAME`; Err says what is wrong with it.
    pub fn parse(text: &str) -> Result<ServicePattern, String> {
        let bad = |why: &str| format!("stop_while_restoring entry {text:?} {why}");
        let (manager, name) =
            text.split_once(':').ok_or_else(|| bad("is not systemd:NAME, docker:NAME or podman:NAME"))?;
        let manager = match manager {
            "systemd" => Manager::Systemd,
            "docker" => Manager::Docker,
            "podman" => Manager::Podman,
            _ => return Err(bad("names no known way an application runs: use systemd:, docker: or podman:")),
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || "@*?._-:/\\".contains(c);
        if name.is_empty() || name.starts_with('-') || !name.chars().all(allowed) {
            return Err(bad("needs a name of letters, digits and @ * ? . _ - : / \\"));
        }
        let mut pattern = name.to_string();
        if manager == Manager::Systemd && !pattern.contains('.') {
            pattern.push_str(".service");
        }
        globset::GlobBuilder::new(&pattern).build().map_err(|e| bad(&format!("is not a pattern: {e}")))?;
        Ok(ServicePattern { manager, pattern })
    }

    fn matches(&self, name: &str, image: &str) -> bool {
        let against = if self.manager != Manager::Systemd && self.pattern.contains('/') { image } else { name };
        globset::Glob::new(&self.pattern).map(|g| g.compile_matcher().is_match(against)).unwrap_or(false)
    }
}

/// A running service or container, and the first unit that named it.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    manager: Manager,
    name: String,
    unit: String,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.manager.what(), self.name)
    }
}

/// What runs now of what `units` say to stop, each once, in the order first named. What
/// cannot be asked (a manager installed but not running) is said to `note`.
pub(crate) fn running(units: &[&Unit], note: &dyn Fn(&str)) -> Vec<Service> {
    let patterns = units.iter().flat_map(|u| u.hooks.stop_while_restoring.iter().map(|p| (p, &u.name)));
    let mut listed: Vec<(Manager, Vec<(String, String)>)> = Vec::new();
    let mut out: Vec<Service> = Vec::new();
    for (p, unit) in patterns {
        if !listed.iter().any(|(m, _)| *m == p.manager) {
            let list = match list(p.manager) {
                Ok(l) => l,
                Err(e) => {
                    note(&format!("note: could not ask which {}s run ({e}); none is stopped", p.manager.what()));
                    Vec::new()
                }
            };
            listed.push((p.manager, list));
        }
        let Some((_, list)) = listed.iter().find(|(m, _)| *m == p.manager) else { continue };
        for (name, image) in list {
            if p.matches(name, image) && !out.iter().any(|s| s.manager == p.manager && s.name == *name) {
                out.push(Service { manager: p.manager, name: name.clone(), unit: unit.clone() });
            }
        }
    }
    out
}

/// The services or containers `manager` runs now: name and image (empty for systemd). A
/// manager not installed runs nothing.
fn list(manager: Manager) -> Result<Vec<(String, String)>, String> {
    if !on_path(manager.program()) {
        return Ok(Vec::new());
    }
    let args: Vec<String> = match manager {
        Manager::Systemd => ["list-units", "--type=service", "--state=running", "--no-legend", "--plain", "--no-pager"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        Manager::Docker | Manager::Podman => {
            vec!["ps".into(), "--no-trunc".into(), "--format".into(), "{{.Names}}\t{{.Image}}".into()]
        }
    };
    let text = output(manager.program(), args)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches(|c: char| c == '●' || c.is_whitespace());
            match manager {
                Manager::Systemd => l.split_whitespace().next().map(|n| (n.to_string(), String::new())),
                Manager::Docker | Manager::Podman => {
                    let (name, image) = l.split_once('\t').unwrap_or((l, ""));
                    (!name.is_empty()).then(|| (name.trim().to_string(), image.trim().to_string()))
                }
            }
        })
        .collect())
}

/// Whether `program` is found in `$PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(program))
            .any(|p| std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    })
}

/// Runs `program` with `args` and returns what it wrote on standard output.
fn output(program: &str, args: Vec<String>) -> Result<String, String> {
    let mut out = tempfile::tempfile().map_err(|e| format!("no temporary file for its output: {e}"))?;
    let copy = out.try_clone().map_err(|e| format!("no temporary file for its output: {e}"))?;
    run(program, args, Some(copy))?;
    let mut text = String::new();
    out.rewind().and_then(|_| out.read_to_string(&mut text)).map_err(|e| format!("its output: {e}"))?;
    Ok(text)
}

fn run(program: &str, args: Vec<String>, stdout: Option<std::fs::File>) -> Result<(), String> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    command::run(command::Invocation {
        program: command::Program::Args(program, args),
        dir: None,
        unit: "",
        home: Path::new(&home),
        stdin: None,
        stdout,
        timeout: TIMEOUT,
    })
}

fn act(service: &Service, verb: &str) -> Result<(), String> {
    run(service.manager.program(), vec![verb.to_string(), service.name.clone()], None)
}

/// The services a restore stopped: started again by [`Stopped::start_again`], or when dropped
/// (a restore that failed or was cancelled), in the reverse order of their stopping.
pub(crate) struct Stopped<'a> {
    services: Vec<Service>,
    /// A dry run's: what would be stopped, nothing done.
    planned: bool,
    progress: &'a Progress,
    log: &'a RunLog,
}

impl<'a> Stopped<'a> {
    pub(crate) fn none(progress: &'a Progress, log: &'a RunLog) -> Stopped<'a> {
        Stopped { services: Vec::new(), planned: false, progress, log }
    }

    /// What [`Stopped::stop`] would stop, stopping nothing.
    pub(crate) fn planned(units: &[&Unit], progress: &'a Progress, log: &'a RunLog) -> Stopped<'a> {
        Stopped { services: running(units, &|l| log.say(l)), planned: true, progress, log }
    }

    /// Stops what runs of what `units` say to stop. One that cannot be stopped fails the
    /// restore before anything is written (those stopped before it are started again).
    pub(crate) fn stop(units: &[&Unit], progress: &'a Progress, log: &'a RunLog) -> EngineResult<Stopped<'a>> {
        let mut stopped = Stopped::none(progress, log);
        for s in running(units, &|l| log.say(l)) {
            progress.set_phase(format!("stopping {s}"));
            if let Err(e) = act(&s, "stop") {
                return Err(EngineError::Hook {
                    unit: s.unit.clone(),
                    reason: format!("{s} could not be stopped ({e}): stop it yourself, or restore as root"),
                });
            }
            log.say(&format!("Stopped {s} for the restore."));
            stopped.services.push(s);
        }
        Ok(stopped)
    }

    /// What was stopped, as people read it.
    pub(crate) fn names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.to_string()).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Starts again everything stopped; what does not start is a warning, returned.
    pub(crate) fn start_again(mut self) -> Vec<String> {
        self.start()
    }

    fn start(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.planned {
            return problems;
        }
        while let Some(s) = self.services.pop() {
            self.progress.set_phase(format!("starting {s}"));
            match act(&s, "start") {
                Ok(()) => self.log.say(&format!("Started {s} again.")),
                Err(e) => {
                    let msg =
                        format!("{s} stopped for the restore could not be started again ({e}): start it yourself");
                    self.log.warn(self.progress, &msg);
                    problems.push(msg);
                }
            }
        }
        problems
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_read_and_checked() {
        let p = ServicePattern::parse("systemd:home-assistant@*").unwrap();
        assert_eq!(p.pattern, "home-assistant@*.service");
        assert!(p.matches("home-assistant@homeassistant.service", ""));
        assert!(!p.matches("hass.service", ""));
        let d = ServicePattern::parse("docker:ghcr.io/home-assistant/*").unwrap();
        assert!(d.matches("hass", "ghcr.io/home-assistant/home-assistant:stable"));
        assert!(!d.matches("ghcr.io/home-assistant/x", "nginx"));
        assert!(ServicePattern::parse("docker:homeassistant").unwrap().matches("homeassistant", "x"));
        for bad in ["homeassistant", "init:hass", "systemd:", "docker:a b", "docker:--all", "systemd:a;b"] {
            assert!(ServicePattern::parse(bad).is_err(), "{bad}");
        }
    }
}
