//! Entry point for the fuzz target in `fuzz/` (cargo-fuzz): the JSON bodies the API accepts,
//! read exactly as its routes read them. Not part of the API.

use std::collections::BTreeMap;

use lifeboat_engine::schedule::ScheduleConfig;

use crate::api::json_body;

/// Every body type of the API; schedules are then turned into times as `PUT /api/schedules`
/// would before saving them.
pub fn api_bodies(data: &[u8]) {
    let _ = json_body::<crate::work::BackupSpec>(data);
    let _ = json_body::<crate::work::RestoreSpec>(data);
    let _ = json_body::<crate::api::backups::PinRequest>(data);
    let _ = json_body::<crate::api::backups::CopyRequest>(data);
    let _ = json_body::<crate::api::info::NewLocation>(data);
    let _ = json_body::<crate::web::SignInBody>(data);
    if let Ok(schedules) = json_body::<BTreeMap<String, ScheduleConfig>>(data) {
        for s in schedules.values() {
            let _ = s.cadence();
        }
    }
}
