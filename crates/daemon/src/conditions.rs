//! The conditions a scheduled run may wait for: the kind of network in use and whether it is
//! metered (from NetworkManager where it runs, else from the kernel's view of the
//! interfaces), and whether the device is on mains power.

use std::path::Path;
use std::process::Command;

use lifeboat_engine::schedule::Condition;

/// The device's situation, as far as conditions go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Situation {
    pub wifi: bool,
    pub ethernet: bool,
    /// `None` when nothing says (no NetworkManager).
    pub metered: Option<bool>,
    pub mains: bool,
}

impl Situation {
    pub fn now() -> Situation {
        let (wifi, ethernet, metered) = network();
        Situation { wifi, ethernet, metered, mains: on_mains(Path::new("/sys/class/power_supply")) }
    }

    /// Why `c` does not hold, or `None` when it does. (`Reachable` is checked by the caller.)
    pub fn refuses(&self, c: Condition) -> Option<String> {
        match c {
            Condition::Reachable => None,
            Condition::Unmetered if self.metered == Some(true) => Some("the network in use is metered".into()),
            Condition::Unmetered => None,
            Condition::Wifi if !self.wifi => Some("not connected to Wi-Fi".into()),
            Condition::Ethernet if !self.ethernet => Some("not connected by Ethernet".into()),
            Condition::Mains if !self.mains => Some("running on battery".into()),
            _ => None,
        }
    }
}

/// (Wi-Fi connected, Ethernet connected, metered).
fn network() -> (bool, bool, Option<bool>) {
    if let Some(nm) = network_manager() {
        return nm;
    }
    // No NetworkManager: an interface that is up, wireless or not.
    let mut wifi = false;
    let mut ethernet = false;
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for e in entries.flatten() {
            let p = e.path();
            let up = std::fs::read_to_string(p.join("operstate")).is_ok_and(|s| s.trim() == "up");
            if !up || e.file_name() == "lo" {
                continue;
            }
            if p.join("wireless").exists() {
                wifi = true;
            } else if p.join("device").exists() {
                ethernet = true;
            }
        }
    }
    (wifi, ethernet, None)
}

/// From `nmcli`: the connected devices' types and the primary connection's metered state.
fn network_manager() -> Option<(bool, bool, Option<bool>)> {
    let out = Command::new("nmcli").args(["-t", "-f", "TYPE,STATE", "device"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let connected = |t: &str| text.lines().any(|l| l.starts_with(&format!("{t}:")) && l.ends_with(":connected"));
    let metered = Command::new("nmcli")
        .args(["-t", "-g", "GENERAL.METERED", "general"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().starts_with("yes"));
    Some((connected("wifi"), connected("ethernet"), metered))
}

/// On mains unless a battery is present and no mains or USB supply is online.
fn on_mains(supplies: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(supplies) else { return true };
    let mut battery = false;
    let mut online = false;
    for e in entries.flatten() {
        let p = e.path();
        let kind = std::fs::read_to_string(p.join("type")).unwrap_or_default();
        match kind.trim() {
            "Battery" => battery = true,
            "Mains" | "USB" | "USB_C" | "USB_PD" => {
                online |= std::fs::read_to_string(p.join("online")).is_ok_and(|s| s.trim() == "1");
            }
            _ => {}
        }
    }
    online || !battery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_from_the_kernels_supplies() {
        let dir = tempfile::tempdir().unwrap();
        let add = |name: &str, kind: &str, online: Option<&str>| {
            let p = dir.path().join(name);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("type"), kind).unwrap();
            if let Some(o) = online {
                std::fs::write(p.join("online"), o).unwrap();
            }
        };
        assert!(on_mains(dir.path()), "no supplies at all: a server or desktop");
        add("BAT0", "Battery\n", None);
        assert!(!on_mains(dir.path()), "a battery and nothing plugged in");
        add("AC", "Mains\n", Some("0\n"));
        assert!(!on_mains(dir.path()));
        std::fs::write(dir.path().join("AC/online"), "1\n").unwrap();
        assert!(on_mains(dir.path()));
        let s = Situation { wifi: false, ethernet: true, metered: Some(true), mains: false };
        assert!(s.refuses(Condition::Wifi).is_some() && s.refuses(Condition::Ethernet).is_none());
        assert_eq!(s.refuses(Condition::Unmetered).as_deref(), Some("the network in use is metered"));
        assert_eq!(s.refuses(Condition::Mains).as_deref(), Some("running on battery"));
    }
}
