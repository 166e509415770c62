//! The end-to-end suite: the real `lifeboat` binary driven in sandboxes, against real servers
//! on 127.0.0.1 and a real headless Chromium. One test binary (one link) with one set of
//! helpers in `common`; each module is one area.

mod common;

mod abuse;
mod applications;
mod backup_file_budgets;
mod backup_files;
mod browse;
mod cache;
mod cli;
mod concurrency;
mod corpus;
mod daemon;
mod devices;
mod faults;
mod fidelity;
mod first_week;
mod hostile;
mod interruptions;
mod live_restore;
mod locations;
mod package;
mod progress;
mod repository;
mod restore_exit_codes;
mod restore_model;
mod restore_modes;
mod restore_plan;
mod security;
mod shared_locations;
mod unattended;
mod units;
mod users;
mod web;
