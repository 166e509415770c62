//! Key slots: the random master key wrapped by keys derived from what a person holds.
//!
//! A password slot derives its key-encryption key with Argon2id; a recovery or device slot
//! holds a full-entropy key (160 bits) and derives with BLAKE3, since stretching adds
//! nothing there. The recovery key is itself derived from the master key, so it can be shown
//! again at any time by anyone who can open the repository (`lifeboat key recovery`).

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::repofile::keyfile::{Kdf, KeyFile};
use crate::{Id, RepoError, RepoResult};

/// Argon2id cost for password slots: RFC 9106's second recommended option, 64 MiB, 3 passes,
/// 4 lanes. The lanes are derived side by side (argon2's `parallel` feature): about 0.09 s on
/// two cores here, 0.15 s on one (the crate built at opt-level 3, see Cargo.toml), once per
/// command. Slots made before lanes ran in parallel have one lane; they open as they did.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_ITERATIONS: u32 = 3;
const ARGON2_PARALLELISM: u32 = 4;

/// What unlocks a repository: a password typed or read from a file, a recovery key, or a
/// device key. Never printed by `Debug`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The kinds of key slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A password a person chose.
    Password,
    /// The printable recovery key of the emergency kit.
    Recovery,
    /// A random key generated for an unattended device and kept in its configuration folder.
    Device,
}

/// A key slot as listed by `lifeboat key list`.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub kind: KeyKind,
    pub label: String,
    pub created: jiff::Timestamp,
    pub host: String,
    pub user: String,
    /// True for the slot that opened the repository in this process.
    pub current: bool,
}

/// A full-entropy key written for people: 32 base32 characters in groups of four.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey([u8; 20]);

impl RecoveryKey {
    pub fn random() -> Self {
        RecoveryKey(rand::random())
    }

    pub(crate) fn derived_from(master: &MasterKey) -> Self {
        let full = blake3::derive_key("lifeboat 2026 recovery key v1", &master.to_bytes());
        let mut out = [0u8; 20];
        out.copy_from_slice(&full[..20]);
        RecoveryKey(out)
    }

    /// Reads the printed form back; case, spaces and dashes do not matter.
    pub fn parse(s: &str) -> Option<Self> {
        let clean: Vec<u8> = s
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\n' | b'\r' | b'\t'))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        if clean.len() != 32 {
            return None;
        }
        let mut bits: u64 = 0;
        let mut nbits = 0;
        let mut out = Vec::with_capacity(20);
        for c in clean {
            let v = BASE32.iter().position(|&a| a == c)? as u64;
            bits = (bits << 5) | v;
            nbits += 5;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        out.try_into().ok().map(RecoveryKey)
    }

    pub fn as_secret(&self) -> Secret {
        Secret(self.to_string())
    }

    fn kek(&self, salt: &[u8]) -> [u8; 32] {
        let mut material = self.0.to_vec();
        material.extend_from_slice(salt);
        blake3::derive_key("lifeboat 2026 full-entropy key slot v1", &material)
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl fmt::Display for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = String::with_capacity(39);
        let mut bits: u64 = 0;
        let mut nbits = 0;
        for &b in &self.0 {
            bits = (bits << 8) | b as u64;
            nbits += 8;
            while nbits >= 5 {
                nbits -= 5;
                chars.push(BASE32[((bits >> nbits) & 31) as usize] as char);
            }
        }
        for (i, c) in chars.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                f.write_str("-")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(…)")
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The ceiling for what a password slot may ask of Argon2: exactly what Lifeboat writes. A
/// slot is read before anything is authenticated, so one planted by whoever can write to the
/// location must not make a device allocate or compute more than its own slots need (on a
/// Raspberry Pi, an out-of-memory kill). A slot above it is skipped with a warning and
/// reported by `check`; a future Lifeboat that writes costlier slots raises it.
pub(crate) const ARGON2_MAX_MEMORY_KIB: u32 = ARGON2_MEMORY_KIB;
pub(crate) const ARGON2_MAX_WORK_KIB: u64 = ARGON2_MEMORY_KIB as u64 * ARGON2_ITERATIONS as u64;
pub(crate) const ARGON2_MAX_ITERATIONS: u32 = ARGON2_ITERATIONS;
pub(crate) const ARGON2_MAX_PARALLELISM: u32 = ARGON2_PARALLELISM;

/// How long an open may spend deriving keys from a password over all slots: a location
/// holding many slots at the ceiling cannot stall every open past it.
pub(crate) const OPEN_BUDGET: std::time::Duration = std::time::Duration::from_secs(12);

/// Why a slot's key derivation is refused, or `None` when it is within the ceiling.
pub(crate) fn kdf_beyond_ceiling(kdf: &Kdf) -> Option<String> {
    let Kdf::Argon2id { memory_kib, iterations, parallelism, .. } = kdf else { return None };
    let work = *memory_kib as u64 * *iterations as u64;
    (*memory_kib > ARGON2_MAX_MEMORY_KIB
        || *iterations > ARGON2_MAX_ITERATIONS
        || *parallelism > ARGON2_MAX_PARALLELISM
        || work > ARGON2_MAX_WORK_KIB)
        .then(|| {
            format!(
                "it asks Argon2 for {} MiB, {iterations} passes and {parallelism} lanes, beyond Lifeboat's ceiling of {} MiB, {ARGON2_MAX_ITERATIONS} passes, {ARGON2_MAX_PARALLELISM} lanes and {} MiB × passes",
                memory_kib / 1024,
                ARGON2_MAX_MEMORY_KIB / 1024,
                ARGON2_MAX_WORK_KIB / 1024
            )
        })
}

pub(crate) fn check_kdf(kdf: &Kdf) -> RepoResult<()> {
    match kdf_beyond_ceiling(kdf) {
        Some(why) => Err(RepoError::malformed("key slot", why)),
        None => Ok(()),
    }
}

/// What opening a slot costs, for trying the cheapest first: full-entropy slots cost nothing.
pub(crate) fn kdf_cost(kdf: &Kdf) -> u64 {
    match kdf {
        Kdf::Argon2id { memory_kib, iterations, .. } => *memory_kib as u64 * *iterations as u64,
        Kdf::Blake3 { .. } => 0,
    }
}

fn argon2_kek(password: &str, memory_kib: u32, iterations: u32, parallelism: u32, salt: &[u8]) -> RepoResult<[u8; 32]> {
    let params =
        Params::new(memory_kib, iterations, parallelism, Some(32)).map_err(|e| RepoError::Kdf(e.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .map_err(|e| RepoError::Kdf(e.to_string()))?;
    Ok(out)
}

/// Makes a new key slot for `secret` wrapping `master`.
/// `config` is the sealed repository config, kept in the slot as a copy (see docs/FORMAT.md).
pub(crate) fn make_slot(
    master: &MasterKey,
    secret: &Secret,
    kind: KeyKind,
    label: &str,
    config: &[u8],
) -> RepoResult<KeyFile> {
    let salt: [u8; 16] = rand::random();
    let (kdf, kek) = match kind {
        KeyKind::Password => (
            Kdf::Argon2id {
                memory_kib: ARGON2_MEMORY_KIB,
                iterations: ARGON2_ITERATIONS,
                parallelism: ARGON2_PARALLELISM,
                salt: b64().encode(salt),
            },
            argon2_kek(secret.expose(), ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, &salt)?,
        ),
        KeyKind::Recovery | KeyKind::Device => {
            let key = RecoveryKey::parse(secret.expose())
                .ok_or_else(|| RepoError::Kdf("a recovery or device key must be 32 base32 characters".into()))?;
            (Kdf::Blake3 { salt: b64().encode(salt) }, key.kek(&salt))
        }
    };
    let wrapped = MasterKey::wrap(&kek, &master.to_bytes());
    let mut slot = KeyFile {
        version: 1,
        kind,
        label: label.to_string(),
        created: jiff::Timestamp::now(),
        host: crate::repo::hostname(),
        user: crate::repo::username(),
        kdf,
        master: b64().encode(wrapped),
        check: None,
        config: Some(b64().encode(config)),
    };
    slot.check = Some(slot_check(master, &slot));
    Ok(slot)
}

/// The MAC of a slot's fields under a key derived from the master key.
fn slot_check(master: &MasterKey, slot: &KeyFile) -> String {
    let key = blake3::derive_key("lifeboat 2026 key slot check v1", &master.to_bytes());
    let fields = serde_json::to_vec(&(
        slot.version,
        &slot.kind,
        &slot.label,
        slot.created.to_string(),
        &slot.host,
        &slot.user,
        &slot.kdf,
        &slot.master,
    ))
    .expect("a key slot's fields serialise");
    b64().encode(blake3::keyed_hash(&key, &fields).as_bytes())
}

/// What the holder of the master key can tell about a slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    Intact,
    /// Made before slots carried a check, and not a recovery slot: only its secret can tell.
    Unverifiable,
    Damaged,
}

pub(crate) fn verify_slot(master: &MasterKey, slot: &KeyFile) -> SlotState {
    match &slot.check {
        Some(c) if *c == slot_check(master, slot) => SlotState::Intact,
        Some(_) => SlotState::Damaged,
        None if slot.kind == KeyKind::Recovery => {
            let rk = RecoveryKey::derived_from(master);
            match open_slot(slot, &rk.as_secret()) {
                Ok(Some(k)) if k.to_bytes() == master.to_bytes() => SlotState::Intact,
                _ => SlotState::Damaged,
            }
        }
        None => SlotState::Unverifiable,
    }
}

/// Tries to open one slot with a secret. `None` when the secret does not fit this slot.
pub(crate) fn open_slot(slot: &KeyFile, secret: &Secret) -> RepoResult<Option<MasterKey>> {
    check_kdf(&slot.kdf)?;
    let kek = match &slot.kdf {
        Kdf::Argon2id { memory_kib, iterations, parallelism, salt } => {
            let salt = b64().decode(salt).map_err(|e| RepoError::malformed("key slot", e))?;
            argon2_kek(secret.expose(), *memory_kib, *iterations, *parallelism, &salt)?
        }
        Kdf::Blake3 { salt } => {
            let Some(key) = RecoveryKey::parse(secret.expose()) else { return Ok(None) };
            let salt = b64().decode(salt).map_err(|e| RepoError::malformed("key slot", e))?;
            key.kek(&salt)
        }
    };
    let wrapped = b64().decode(&slot.master).map_err(|e| RepoError::malformed("key slot", e))?;
    Ok(MasterKey::unwrap(&kek, &wrapped).and_then(|raw| {
        let raw: [u8; 64] = raw.try_into().ok()?;
        Some(MasterKey::from_bytes(&raw))
    }))
}

/// The slot's copy of the sealed config, when it carries one that decodes.
pub(crate) fn config_copy(slot: &KeyFile) -> Option<Vec<u8>> {
    b64().decode(slot.config.as_ref()?).ok()
}

pub(crate) fn encode_config_copy(sealed: &[u8]) -> String {
    b64().encode(sealed)
}

/// The key slots a location listed, as read.
pub(crate) struct ReadSlots {
    /// Every slot that parses, with its id.
    pub slots: Vec<(Id, KeyFile)>,
    /// How many do not.
    pub unreadable: usize,
    /// The stored bytes of each slot that parses.
    pub stored: Vec<(Id, Vec<u8>)>,
}

/// Reads the listed key slots side by side.
pub(crate) fn read_slots(
    store: &dyn lifeboat_storage::Store,
    listed: &[lifeboat_storage::ObjectInfo],
    threads: usize,
) -> RepoResult<ReadSlots> {
    // A slot larger than any Lifeboat writes is not read: it counts as a damaged one.
    let read =
        crate::parallel::map(threads, listed, |o| match crate::limits::within(o, crate::limits::MAX_SMALL_OBJECT) {
            Ok(()) => crate::limits::read_as_listed(store, &o.name, o.size).map(Some),
            Err(_) => Ok(None),
        });
    let mut out = ReadSlots { slots: Vec::new(), unreadable: 0, stored: Vec::new() };
    for (o, bytes) in listed.iter().zip(read) {
        // A slot listed and gone: removed meanwhile (by `key remove`, or by a device that
        // lost the race to create this repository and withdrew its own).
        let bytes = match bytes {
            Err(e) if e.is_not_found() => continue,
            Ok(None) => {
                out.unreadable += 1;
                continue;
            }
            r => r?.unwrap_or_default(),
        };
        let (Ok(file), Some(id)) = (serde_json::from_slice::<KeyFile>(&bytes), crate::pack::pack_id_from_name(&o.name))
        else {
            out.unreadable += 1;
            continue;
        };
        out.slots.push((id, file));
        out.stored.push((id, bytes));
    }
    Ok(out)
}

/// Opens one slot, as stored, with a secret: its master key, or `None` when the secret is
/// not this slot's (or the slot does not parse, or asks a derivation beyond the ceiling).
pub(crate) fn open_stored(stored: &[u8], secret: &Secret) -> Option<(KeyKind, MasterKey)> {
    let file: KeyFile = serde_json::from_slice(stored).ok()?;
    let full_entropy = RecoveryKey::parse(secret.expose()).is_some();
    if (file.kind != KeyKind::Password && !full_entropy) || kdf_beyond_ceiling(&file.kdf).is_some() {
        return None;
    }
    let key = open_slot(&file, secret).ok()??;
    Some((file.kind, key))
}

/// The slot a secret opened, and the master key it holds.
pub(crate) struct Opened {
    pub slot: Id,
    pub kind: KeyKind,
    pub key: MasterKey,
}

/// Tries the slots with a secret, cheapest first, within [`OPEN_BUDGET`]: a recovery key
/// never waits for an Argon2 derivation, and slots beyond the ceiling are skipped.
pub(crate) fn open_any(
    slots: &[(Id, KeyFile)],
    unreadable: usize,
    secret: &Secret,
    location: &str,
) -> RepoResult<Opened> {
    let looks_full_entropy = RecoveryKey::parse(secret.expose()).is_some();
    let mut order: Vec<&(Id, KeyFile)> =
        slots.iter().filter(|(_, f)| f.kind == KeyKind::Password || looks_full_entropy).collect();
    order.sort_by_key(|(_, f)| kdf_cost(&f.kdf));
    // Said every time, whether or not the slot would have been reached: someone planted it.
    for (id, file) in slots {
        if let Some(why) = kdf_beyond_ceiling(&file.kdf) {
            tracing::warn!(
                "key slot {} skipped: {why}; if you did not make it, remove it (`lifeboat check --repair`)",
                slot_name(id)
            );
        }
    }
    let started = std::time::Instant::now();
    let mut damaged = unreadable;
    let mut untried = 0;
    for (i, (id, file)) in order.iter().enumerate() {
        // Warned about above; not counted as damage, so a mistyped password is still told
        // as one.
        if kdf_beyond_ceiling(&file.kdf).is_some() {
            continue;
        }
        if kdf_cost(&file.kdf) > 0 && started.elapsed() > OPEN_BUDGET {
            untried = order.len() - i;
            break;
        }
        // A damaged slot must not stop the others from being tried.
        match open_slot(file, secret) {
            Ok(Some(key)) => return Ok(Opened { slot: *id, kind: file.kind, key }),
            Ok(None) => {}
            Err(_) => damaged += 1,
        }
    }
    let location = location.to_string();
    if untried > 0 {
        return Err(RepoError::OpenBudget { location, seconds: OPEN_BUDGET.as_secs(), untried });
    }
    if damaged > 0 {
        return Err(RepoError::KeySlotsDamaged { location, unreadable: damaged });
    }
    Err(RepoError::WrongPassword(location))
}

pub(crate) fn slot_name(id: &Id) -> String {
    format!("keys/{}", id.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_key_prints_and_parses() {
        let k = RecoveryKey::random();
        let s = k.to_string();
        assert_eq!(s.len(), 39, "{s}");
        assert_eq!(RecoveryKey::parse(&s), Some(k.clone()));
        assert_eq!(RecoveryKey::parse(&s.to_lowercase().replace('-', " ")), Some(k));
        assert!(RecoveryKey::parse("not a key").is_none());
    }

    #[test]
    fn a_planted_slot_beyond_the_ceiling_is_never_derived_and_a_wrong_password_is_told_as_one() {
        let master = MasterKey::random();
        let ours = make_slot(&master, &Secret::new("correct horse"), KeyKind::Password, "", b"").unwrap();
        let mut planted = ours.clone();
        planted.kdf = Kdf::Argon2id {
            memory_kib: 4 * 1024 * 1024,
            iterations: 64,
            parallelism: 16,
            salt: b64().encode([0u8; 16]),
        };
        // Planted first: were it derived, this test would take minutes and 4 GiB.
        let slots = vec![(Id::random(), planted), (Id::random(), ours)];
        assert!(open_any(&slots, 0, &Secret::new("correct horse"), "here").is_ok());
        assert!(matches!(open_any(&slots, 0, &Secret::new("wrong"), "here"), Err(RepoError::WrongPassword(_))));
    }

    /// Known answers from the reference implementation (argon2-cffi 23, over phc-winner-argon2)
    /// for the slots Lifeboat writes (4 lanes) and those it wrote before (1 lane): a KDF
    /// crate that changed its output would lock every user out of their backups.
    #[test]
    fn argon2_derives_what_the_reference_implementation_derives_with_one_lane_and_with_four() {
        let salt = [7u8; 16];
        let one = argon2_kek("correct horse", 64 * 1024, 3, 1, &salt).unwrap();
        assert_eq!(hex::encode(one), "7b985d8fa00c9eccccf918c8cb9feaa8036af381caf6f498e099b5b849b8c18a");
        let four =
            argon2_kek("correct horse", ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, &salt).unwrap();
        assert_eq!(hex::encode(four), "b9544fd17a6791078aa071a2eb5d1e653ca9788d942f83158bb4ee9b552a2326");
    }

    /// A slot made with one lane, as Lifeboat made them before its lanes ran in parallel,
    /// still opens.
    #[test]
    fn a_slot_of_one_lane_opens() {
        let master = MasterKey::random();
        let mut slot = make_slot(&master, &Secret::new("correct horse"), KeyKind::Password, "", b"").unwrap();
        let salt = [9u8; 16];
        let kek = argon2_kek("correct horse", ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, 1, &salt).unwrap();
        slot.kdf = Kdf::Argon2id {
            memory_kib: ARGON2_MEMORY_KIB,
            iterations: ARGON2_ITERATIONS,
            parallelism: 1,
            salt: b64().encode(salt),
        };
        slot.master = b64().encode(MasterKey::wrap(&kek, &master.to_bytes()));
        slot.check = Some(slot_check(&master, &slot));
        let slots = vec![(Id::random(), slot)];
        let opened = open_any(&slots, 0, &Secret::new("correct horse"), "here").unwrap();
        assert_eq!(opened.key.to_bytes(), master.to_bytes());
    }

    #[test]
    fn slots_open_only_with_their_secret() {
        let master = MasterKey::random();
        let slot = make_slot(&master, &Secret::new("correct horse"), KeyKind::Password, "", b"").unwrap();
        assert!(open_slot(&slot, &Secret::new("wrong")).unwrap().is_none());
        let opened = open_slot(&slot, &Secret::new("correct horse")).unwrap().unwrap();
        assert_eq!(opened.to_bytes(), master.to_bytes());
        let rk = RecoveryKey::derived_from(&master);
        let slot = make_slot(&master, &rk.as_secret(), KeyKind::Recovery, "", b"").unwrap();
        assert!(open_slot(&slot, &rk.as_secret()).unwrap().is_some());
        assert!(open_slot(&slot, &RecoveryKey::random().as_secret()).unwrap().is_none());
    }
}
