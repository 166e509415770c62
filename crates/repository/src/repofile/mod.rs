//! The on-disk types, one per file, and nothing but their shape and (de)serialisation.

pub(crate) mod config;
pub(crate) mod index_file;
pub(crate) mod keyfile;
pub(crate) mod lockfile;
pub(crate) mod pack_header;
pub mod snapshot;
pub mod tree;
