//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): backup files (received from
//! anywhere) and the configuration. Not part of the API.

/// A backup file: its outer tar, manifest and every unit's tar (unencrypted units are read
/// entry by entry; the file's checksums are checked at the end).
pub fn backup_file(data: &[u8]) {
    crate::backup_file::read_everything(data);
}

/// A configuration file: parsed, then each schedule's times and each location's settings
/// taken as the daemon and the commands would.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = crate::config::parse(text, std::path::Path::new("fuzz.toml")) else { return };
    for s in config.schedule.values() {
        let _ = s.cadence();
    }
    let dirs = crate::Dirs {
        home: "/nonexistent/home".into(),
        config: "/nonexistent/config".into(),
        data: "/nonexistent/data".into(),
        logs: "/nonexistent/logs".into(),
        cache: None,
        root: false,
    };
    let all = crate::location::locations(&config, &dirs);
    let _ = crate::location::info(&all, &crate::location::default_location_name(&config, &dirs));
    let _ = crate::unit::units(&config, &dirs, &[]);
    let _ = crate::config_edit::without_secrets(text);
}
