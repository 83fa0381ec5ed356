//! A task's cache key: SHA-256 over a serialized struct of everything that affects its output.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::decl::Canon;

/// Bumped when the key layout changes, so old records read as "engine version changed".
pub const ENGINE_KEY_VERSION: u32 = 2;

/// Everything that goes into a key. Maps are BTreeMaps so order never depends on the source.
#[derive(Debug, Serialize)]
pub struct KeyInput<'a> {
    /// [`ENGINE_KEY_VERSION`].
    pub engine: u32,
    /// The task's kind.
    pub kind: &'a str,
    /// Canonical declaration (all fields but `description`).
    pub declaration: &'a Canon,
    /// Digest of every (root-relative path, content digest with `+x` when executable), sorted.
    pub inputs: &'a str,
    /// Dependency name → its key (turborepo-style: folded in sorted order).
    pub deps: &'a BTreeMap<String, String>,
    /// Kind-supplied material (target identity, resolved settings).
    pub material: &'a BTreeMap<String, String>,
}

/// Hex SHA-256 of the JSON serialization of `value`, streamed into the hasher.
pub fn digest_of(value: &impl Serialize) -> String {
    struct HashWriter(Sha256);
    impl Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    // Serializing plain data structures into an in-memory hasher cannot fail.
    serde_json::to_writer(&mut w, value).expect("serializing key material to a hasher");
    hex::encode(w.0.finalize())
}

/// The task's key.
pub fn compute(input: &KeyInput<'_>) -> String {
    digest_of(input)
}
