//! A store held in memory, for tests of the layers above: the repository's operations run on
//! it without a disk or a server, and a test can damage, drop or plant objects directly.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;

use crate::store::{check_name, check_read_length, is_temporary};
use crate::{ObjectInfo, Store, StoreError, StoreResult};

/// Objects by name, in memory. Temporary objects are never made: each write is whole at once.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every object's name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Changes an object's bytes in place, as a bad disk or a hostile writer would.
    pub fn tamper(&self, name: &str, change: impl FnOnce(&mut Vec<u8>)) -> StoreResult<()> {
        let mut objects = self.lock();
        let bytes = objects.get_mut(name).ok_or_else(|| StoreError::NotFound { name: name.to_string() })?;
        change(bytes);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A test that panicked while holding the lock left whole objects: writes are whole.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn prepare(&self) -> StoreResult<()> {
        Ok(())
    }

    fn write(&self, name: &str, data: &[u8]) -> StoreResult<()> {
        check_name(name)?;
        self.lock().insert(name.to_string(), data.to_vec());
        Ok(())
    }

    fn write_new(&self, name: &str, data: &[u8]) -> StoreResult<bool> {
        check_name(name)?;
        let mut objects = self.lock();
        if objects.contains_key(name) {
            return Ok(false);
        }
        objects.insert(name.to_string(), data.to_vec());
        Ok(true)
    }

    fn read_at_most(&self, name: &str, max: u64) -> StoreResult<Result<Vec<u8>, u64>> {
        check_name(name)?;
        let objects = self.lock();
        let bytes = objects.get(name).ok_or_else(|| StoreError::NotFound { name: name.to_string() })?;
        Ok(if bytes.len() as u64 > max { Err(bytes.len() as u64) } else { Ok(bytes.clone()) })
    }

    fn read(&self, name: &str, range: Option<Range<u64>>) -> StoreResult<Vec<u8>> {
        check_name(name)?;
        let objects = self.lock();
        let bytes = objects.get(name).ok_or_else(|| StoreError::NotFound { name: name.to_string() })?;
        match range {
            None => Ok(bytes.clone()),
            Some(r) => {
                let len = bytes.len() as u64;
                let start = r.start.min(len) as usize;
                let end = r.end.min(len).max(start as u64) as usize;
                check_read_length(name, &r, end - start, || len)?;
                Ok(bytes[start..end].to_vec())
            }
        }
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        check_name(prefix)?;
        let folder = format!("{prefix}/");
        Ok(self
            .lock()
            .range(folder.clone()..)
            .take_while(|(name, _)| name.starts_with(&folder))
            .filter(|(name, _)| !name.rsplit('/').next().is_some_and(is_temporary))
            .map(|(name, bytes)| ObjectInfo { name: name.clone(), size: bytes.len() as u64 })
            .collect())
    }

    fn size(&self, name: &str) -> StoreResult<u64> {
        check_name(name)?;
        self.lock().get(name).map(|b| b.len() as u64).ok_or_else(|| StoreError::NotFound { name: name.to_string() })
    }

    fn remove(&self, name: &str) -> StoreResult<()> {
        check_name(name)?;
        self.lock().remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_memory_store_passes_conformance() {
        crate::conformance::run(&super::MemoryStore::new());
    }
}
