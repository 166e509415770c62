//! A small device's budget on this machine: a memory cgroup (v1 or v2) with a hard limit,
//! whose processes run on one core (`taskset`), as on a Raspberry Pi with 128 MiB free.

use std::path::PathBuf;
use std::process::Command;

pub struct SmallDevice {
    path: PathBuf,
}

impl SmallDevice {
    /// A cgroup limited to `limit` bytes, or why this machine cannot make one (not root, no
    /// memory controller that can be written).
    pub fn new(limit: u64) -> Result<SmallDevice, String> {
        let me = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let v1 = me.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "memory").then(|| path.to_string())
        });
        let (base, limit_file) = match v1 {
            Some(p) => (format!("/sys/fs/cgroup/memory{p}"), "memory.limit_in_bytes"),
            None => {
                let p = me.lines().find_map(|l| l.strip_prefix("0::")).ok_or("no cgroup v2 line")?;
                (format!("/sys/fs/cgroup{p}"), "memory.max")
            }
        };
        let path = PathBuf::from(base).join(format!("lifeboat-test-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let device = SmallDevice { path };
        std::fs::write(device.path.join(limit_file), limit.to_string())
            .map_err(|e| format!("{}: {e}", device.path.join(limit_file).display()))?;
        Ok(device)
    }

    /// `c` as a process of this device: moved into the cgroup, on the first core.
    pub fn wrap(&self, c: &Command) -> Command {
        let procs = self.path.join("cgroup.procs");
        let mut w = Command::new("sh");
        w.arg("-c")
            .arg(format!("echo $$ > '{}' && exec taskset -c 0 \"$@\"", procs.display()))
            .arg("--")
            .arg(c.get_program())
            .args(c.get_args())
            .env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                w.env(k, v);
            }
        }
        w
    }
}

impl Drop for SmallDevice {
    fn drop(&mut self) {
        // Empty once its processes ended; a cgroup is removed with rmdir.
        let _ = std::fs::remove_dir(&self.path);
    }
}
