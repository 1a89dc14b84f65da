//! sidekey-scan's library: sources, rules, the engine and reports.
//!
//! [`plan`] checks what the user asked for once and runs it: [`plan::ScanPlan::from_options`]
//! builds the engine, baseline, mode and fingerprint set, [`plan::ScanPlan::run`] scans,
//! verifies, revokes and reports; the binary only parses its command line and maps the
//! [`plan::Outcome`] to an exit code.
//!
//! [`source`] (files, git history and index, archives) → [`source::dispatch`] (sniff: text,
//! UTF-16, archive, binary) → [`scan::Scan`] (windows, base64, [`allow`]) →
//! [`engine::Engine::scan`] → [`finding::Finding`] → [`report`]. [`hook`] writes git hooks.
//! [`owned`] tells the broker's own credentials by fingerprint (`--verify`), fetched from the
//! agent ([`agent`], the one place the scanner talks to its socket) or the Vault registry;
//! [`response`] revokes them (`--revoke`); [`verify`] asks AWS STS and Vault whether other
//! leaked credentials still work, and [`response`] deactivates or revokes those too. The calls
//! to each issuer are in one room each: [`issuer::aws`], [`issuer::vault`].
//! Rules are data (`config/rules.toml`, compiled into the binary) carrying their own positive
//! and negative examples, which the test suite runs.
#![forbid(unsafe_code)]

pub mod agent;
pub mod allow;
pub mod engine;
pub mod finding;
pub mod hook;
pub mod issuer;
pub mod owned;
pub mod plan;
pub mod report;
pub mod response;
pub mod rules;
pub mod scan;
pub mod source;
pub mod verify;
pub mod views;
