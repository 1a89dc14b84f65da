//! sidekey-agent's library: everything the `sidekey-agent` binary runs, so that `main.rs`
//! stays a thin dispatcher and the fuzz targets (`fuzz/`) can reach the request routing and
//! the cache decoder without a socket.
//!
//! [`cmd`] runs one subcommand parsed by [`cli`]; `run` builds the `app`: backends feed the
//! `scheduler`, which publishes into the `store`; the [`server`] answers from it, the
//! [`cache`] keeps it across restarts, and `delivery` writes `[[file]]`s; `ready` says when all
//! of it is there (systemd's `READY=1` through `notify`, `run --once`).
#![forbid(unsafe_code)]

mod app;
mod audit_log;
mod backend;
mod backoff;
pub mod cache;
pub mod cli;
pub mod cmd;
mod delivery;
mod fingerprints;
mod holds;
mod metrics;
mod notify;
mod policy;
mod proxy;
mod publish;
mod ready;
mod scheduler;
pub mod server;
mod store;
