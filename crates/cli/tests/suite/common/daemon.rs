//! A real `lifeboat serve` on a free loopback port, and a client for its API.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};

use super::Sandbox;

pub struct Daemon {
    pub child: Child,
    pub url: String,
    pub token: String,
}

impl Daemon {
    pub fn start(sb: &Sandbox) -> Daemon {
        Self::start_with(sb, sb.command())
    }

    /// A daemon with one more environment variable.
    pub fn start_with_env(sb: &Sandbox, key: &str, value: &std::path::Path) -> Daemon {
        let mut c = sb.command();
        c.env(key, value);
        Self::start_with(sb, c)
    }

    /// A daemon with no password: it opens repositories with this device's keys only.
    pub fn start_without_password(sb: &Sandbox) -> Daemon {
        Self::start_with(sb, sb.bare_command())
    }

    /// A daemon under a lowered open-file limit (soft and hard), as a packaged unit's
    /// `LimitNOFILE=` or a shell's `ulimit -n` would set it.
    pub fn start_with_open_files(sb: &Sandbox, limit: u64) -> Daemon {
        use std::os::unix::process::CommandExt;
        let mut c = sb.command();
        // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe and
        // touches nothing of the parent's.
        unsafe {
            c.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Self::start_with(sb, c)
    }

    /// A daemon started from `command` (the sandbox's, with what a test adds).
    pub fn start_with(sb: &Sandbox, mut command: std::process::Command) -> Daemon {
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting lifeboat serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("Listening on ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .trim_end_matches('/')
            .to_string();
        let token = sb.ok(&["token"]).trim().to_string();
        Daemon { child, url, token }
    }

    pub fn client() -> reqwest::blocking::Client {
        super::http().timeout(None).build().unwrap()
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        Self::client().get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().unwrap()
    }

    pub fn json(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = Self::client()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.text().unwrap()).unwrap_or(serde_json::Value::Null))
    }

    /// Follows a job's events to its end; returns the final job and what was seen.
    pub fn follow(&self, job: u64) -> (serde_json::Value, Vec<String>) {
        let mut r = self.get(&format!("/api/jobs/{job}/events"));
        assert_eq!(r.status().as_u16(), 200);
        let mut text = String::new();
        r.read_to_string(&mut text).unwrap();
        let mut kinds = Vec::new();
        let mut event = String::new();
        let mut done = serde_json::Value::Null;
        for line in text.lines() {
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
                kinds.push(event.clone());
            } else if let Some(data) = line.strip_prefix("data: ") {
                if event == "done" {
                    done = serde_json::from_str(data).unwrap();
                }
            }
        }
        (done, kinds)
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every operation of docs/openapi.json, with its path parameters filled in.
pub fn openapi_routes() -> Vec<(reqwest::Method, String)> {
    let doc: serde_json::Value = serde_json::from_str(include_str!("../../../../../docs/openapi.json")).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_some() {
                let p = path.replace("{slug}", "0123abcd").replace("{id}", "1").replace("{name}", "nightly");
                out.push((method.to_uppercase().parse().unwrap(), p));
            }
        }
    }
    out
}
