//! Many devices, one owner: a location whose repository is made `--like` another shares its
//! blob ids and chunking, so a copy between the two sends only what is missing, and diff and
//! find compare their backups by content id. Without it, diff and find report no false
//! changes either.

use std::path::Path;
use std::sync::atomic::Ordering;

use crate::common::daemon::Daemon;
use crate::common::servers::{Relay, Seaweed};
use crate::common::{random_bytes, stderr, Sandbox};

/// A folder of incompressible files (about 24 MiB) and some text.
fn data(at: &Path) {
    std::fs::create_dir_all(at.join("photos")).unwrap();
    for i in 0..12u64 {
        std::fs::write(
            at.join(format!("photos/IMG_{i:04}.jpg")),
            random_bytes((1 << 20) + (i as usize) * 200_000, 500 + i),
        )
        .unwrap();
    }
    std::fs::write(at.join("notes.txt"), "a note\n".repeat(5000)).unwrap();
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The size the location's listing gives for a location's repository.
fn stored(sb: &Sandbox, location: &str) -> u64 {
    let rows = json(&sb.ok(&["locations", "list", "--json"]));
    let row = rows.as_array().unwrap().iter().find(|r| r["name"] == location).unwrap();
    row["size"].as_u64().unwrap_or_else(|| panic!("no size for {location}: {row}"))
}

#[test]
fn a_copy_into_a_location_made_like_another_sends_only_what_it_lacks_and_compares_by_content_id() {
    let sb = Sandbox::new("");
    let src = sb.dir.path().join("src");
    data(&src);
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"nas\"\n[location.nas]\ntype = \"local\"\npath = \"{}\"\n[unit.data]\npaths = [{:?}]\n",
            sb.repo.display(),
            src.display().to_string()
        ),
    )
    .unwrap();
    let nas_first = sb.backup(&[]);
    let nas_first = nas_first["slug"].as_str().unwrap().to_string();

    // The bucket is reached through a relay that counts the bytes the server receives.
    let mut server = Seaweed::start(&sb.dir.path().join("weed"));
    server.create_bucket("family");
    let s3_port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let relay = Relay::start(s3_port);
    let endpoint = format!("http://127.0.0.1:{}", relay.port);
    let added = sb.ok(&[
        "locations",
        "add",
        "cloud",
        "--type",
        "s3",
        "--set",
        &format!("endpoint={endpoint}"),
        "--set",
        "bucket=family",
        "--set",
        "root=phone",
        "--set",
        &format!("access_key_id={}", server.access_key),
        "--set",
        &format!("secret_access_key={}", server.secret_key),
        "--like",
        "nas",
    ]);
    assert!(added.contains("blob ids and chunking of nas"), "{added}");
    let cloud_own = sb.backup(&["--location", "cloud"]);
    let cloud_own = cloud_own["slug"].as_str().unwrap().to_string();
    let backup_bytes = stored(&sb, "cloud");
    assert!(backup_bytes > 10 << 20, "the backup is in the bucket: {backup_bytes} bytes");

    // The same data backed up to nas, then copied to cloud: nothing of its data travels.
    let nas_second = sb.backup(&[]);
    let nas_second = nas_second["slug"].as_str().unwrap().to_string();
    let sent_before = relay.sent.load(Ordering::SeqCst);
    let copied = json(&sb.ok(&["backups", "copy", &nas_second, "--to", "cloud", "--json", "--quiet"]));
    assert_eq!(copied["copied"], true, "{copied}");
    let sent = relay.sent.load(Ordering::SeqCst) - sent_before;
    let growth = stored(&sb, "cloud") - backup_bytes;
    eprintln!(
        "copy into the location made --like: {growth} bytes more in the bucket, {sent} bytes received by the \
         server, for a backup of {backup_bytes} stored bytes"
    );
    assert!(
        (growth as f64) < 0.01 * backup_bytes as f64,
        "the bucket grew by {growth} bytes for a backup of {backup_bytes}"
    );
    assert!((sent as f64) < 0.01 * backup_bytes as f64, "the server received {sent} bytes for {backup_bytes}");

    // The backups of the two locations compare by content id: no change, one version.
    let diff = json(&sb.ok(&["backups", "diff", &nas_first, &cloud_own, "--json"]));
    for list in ["added", "removed", "modified"] {
        assert_eq!(diff[list].as_array().unwrap().len(), 0, "{list}: {diff}");
    }
    assert!(diff.get("compared").is_none(), "compared by content id: {diff}");
    let found = json(&sb.ok(&["backups", "find", "IMG_0003.jpg", "--json"]));
    let versions = found[0]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "one content in both locations: {found}");
    let holders: Vec<&str> = versions[0]["backups"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(holders.contains(&cloud_own.as_str()) && holders.contains(&nas_first.as_str()), "{found}");
    let out = sb.run(&["backups", "find", "IMG_0003.jpg"]);
    assert!(!stderr(&out).contains("note:"), "{}", stderr(&out));
    sb.ok(&["check", "--location", "cloud"]);
}

#[test]
fn without_like_diff_and_find_across_locations_report_no_false_changes() {
    let sb = Sandbox::new("");
    let src = sb.dir.path().join("src");
    data(&src);
    let card = sb.dir.path().join("card-repo");
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"nas\"\n[location.nas]\ntype = \"local\"\npath = \"{}\"\n[location.card]\ntype = \
             \"local\"\npath = \"{}\"\n[unit.data]\npaths = [{:?}]\n",
            sb.repo.display(),
            card.display(),
            src.display().to_string()
        ),
    )
    .unwrap();
    let on_nas = sb.backup(&[]);
    let on_nas = on_nas["slug"].as_str().unwrap().to_string();
    // One photo changes, keeping its size; the rest stay as they are.
    let changed = src.join("photos/IMG_0005.jpg");
    let len = std::fs::metadata(&changed).unwrap().len() as usize;
    std::fs::write(&changed, random_bytes(len, 9999)).unwrap();
    let on_card = sb.backup(&["--location", "card"]);
    let on_card = on_card["slug"].as_str().unwrap().to_string();

    let diff = json(&sb.ok(&["backups", "diff", &on_nas, &on_card, "--json"]));
    let modified: Vec<&str> =
        diff["modified"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert_eq!(modified.len(), 1, "only the changed photo: {diff}");
    assert!(modified[0].ends_with("photos/IMG_0005.jpg"), "{diff}");
    assert_eq!(diff["modified"][0]["what"], "content", "{diff}");
    assert!(diff["compared"].as_str().is_some_and(|c| c.contains("reading")), "says how it compared: {diff}");
    let out = sb.run(&["backups", "diff", &on_nas, &on_card]);
    assert!(stderr(&out).contains("note: files were compared by reading"), "{}", stderr(&out));

    let found = json(&sb.ok(&["backups", "find", "IMG_0003.jpg", "--json"]));
    assert_eq!(found[0]["versions"].as_array().unwrap().len(), 1, "one version of an unchanged file: {found}");
    let found = json(&sb.ok(&["backups", "find", "IMG_0005.jpg", "--json"]));
    assert_eq!(found[0]["versions"].as_array().unwrap().len(), 2, "two of the changed one: {found}");

    // An existing repository cannot be made like another: one line, nothing written.
    let before = std::fs::read_to_string(&sb.config).unwrap();
    let out =
        sb.run(&["locations", "add", "card2", "--type", "local", "--path", card.to_str().unwrap(), "--like", "nas"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("card2") && lines[0].contains("cannot change"), "{err}");
    assert_eq!(std::fs::read_to_string(&sb.config).unwrap(), before, "the configuration is unchanged");

    // The API refuses it too, and keeps nothing; a place whose repository has them is taken.
    let d = Daemon::start(&sb);
    let body = serde_json::json!({"name": "card2", "type": "local", "path": card.to_str().unwrap(), "like": "nas"});
    let (status, answer) = d.json(reqwest::Method::POST, "/api/locations", body);
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("cannot change")), "{answer}");
    assert_eq!(std::fs::read_to_string(&sb.config).unwrap(), before, "the configuration is unchanged");
    let body = serde_json::json!({"name": "nas2", "type": "local", "path": sb.repo.to_str().unwrap(), "like": "nas"});
    let (status, answer) = d.json(reqwest::Method::POST, "/api/locations", body);
    assert_eq!(status, 201, "{answer}");
    assert!(std::fs::read_to_string(&sb.config).unwrap().contains("like = \"nas\""));
}

#[test]
fn whichever_is_made_first_the_other_is_made_like_it_and_a_copy_makes_its_destination_like_the_source() {
    let sb = Sandbox::new("");
    let src = sb.dir.path().join("src");
    data(&src);
    let (card, usb) = (sb.dir.path().join("card-repo"), sb.dir.path().join("usb-repo"));
    std::fs::write(
        &sb.config,
        format!(
            "default_location = \"nas\"\n[location.nas]\ntype = \"local\"\npath = \"{}\"\n[location.card]\ntype = \
             \"local\"\npath = \"{}\"\nlike = \"nas\"\n[location.usb]\ntype = \"local\"\npath = \"{}\"\n\
             [unit.data]\npaths = [{:?}]\n",
            sb.repo.display(),
            card.display(),
            usb.display(),
            src.display().to_string()
        ),
    )
    .unwrap();
    // card is made first (nas holds nothing yet); nas, which card names, is made like it.
    let on_card = sb.backup(&["--location", "card"]);
    let on_nas = sb.backup(&[]);
    let (on_card, on_nas) = (on_card["slug"].as_str().unwrap(), on_nas["slug"].as_str().unwrap());
    let diff = json(&sb.ok(&["backups", "diff", on_card, on_nas, "--json"]));
    assert!(diff.get("compared").is_none() && diff["modified"].as_array().unwrap().is_empty(), "{diff}");
    let checked = sb.ok(&["locations", "check", "card"]);
    assert!(checked.contains("like nas: same blob ids and chunking"), "{checked}");

    // usb has no repository: the copy makes it like nas, so a backup made there later
    // stores nothing new and compares by content id.
    let copied = json(&sb.ok(&["backups", "copy", on_nas, "--to", "usb", "--json", "--quiet"]));
    assert_eq!(copied["copied"], true, "{copied}");
    let on_usb = sb.backup(&["--location", "usb"]);
    assert_eq!(on_usb["stored"].as_u64(), Some(0), "nothing new stored: {on_usb}");
    let diff = json(&sb.ok(&["backups", "diff", on_nas, on_usb["slug"].as_str().unwrap(), "--json"]));
    assert!(diff.get("compared").is_none() && diff["modified"].as_array().unwrap().is_empty(), "{diff}");
}
