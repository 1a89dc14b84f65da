//! Sources: where bytes come from. Each source yields blobs (bytes plus the path the user
//! would type); the engine never knows which source it is reading.

pub mod files;

/// Why a part of the input could not be scanned (reported; the rest is still scanned).
#[derive(Debug, Clone)]
pub struct Skipped {
    /// What was skipped.
    pub path: String,
    /// Why.
    pub reason: String,
}
