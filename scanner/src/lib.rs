//! sidekey-scan's library: rules and the engine that applies them.
//!
//! [`source`] → blob bytes → [`engine::Engine::scan`] → [`engine::Match`] → [`allow`] (inline,
//! baseline) → [`finding::Finding`] → [`report`]. Verification, revocation, git history and
//! archives are not built yet. Rules are data (`config/rules.toml`, compiled into
//! the binary) carrying their own positive and negative examples, which the test suite runs.
#![forbid(unsafe_code)]

pub mod allow;
pub mod engine;
pub mod finding;
pub mod report;
pub mod rules;
pub mod source;
