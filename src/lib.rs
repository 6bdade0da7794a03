//! postgrey-advisor: finds the senders that postgrey's greylisting delays for hours because they
//! retry from many servers, and tells which of them are safe to add to `whitelist_clients`.
//!
//! Data flows one way: `source` (journal or text) → `event` (parse a postgrey line) →
//! `group` (sender organisation) → `tally` (evidence per group and day) → `advice`
//! (status, verdict, suggestion) → `render` (table, JSON, counts, mail, journal, Nagios,
//! Prometheus). The middle (`event`, `group`, `tally`, `advice`, `whitelist`, `timespec`) is pure:
//! no I/O, tested with plain values.

pub mod advice;
pub mod app;
pub mod atomic;
pub mod cli;
pub mod edit;
pub mod error;
pub mod escape;
pub mod event;
pub mod group;
pub mod hostname;
pub mod json_text;
pub mod mail;
pub mod man;
pub mod nagios;
pub mod postgrey;
pub mod reload;
pub mod render;
pub mod report;
pub mod source;
pub mod state;
pub mod tally;
pub mod timespec;
pub mod whitelist;
