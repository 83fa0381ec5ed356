//! A keyed digest of the resolved secrets: HMAC-SHA256 under a random per-checkout key kept
//! 0600 in `target/xtask/`. It changes whenever a value changes (so a rotated secret re-keys the
//! deploy and rolls the pods via the chart's `secretChecksum`), yet, unlike a plain hash, a short
//! password cannot be recovered from it by guessing.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SecretValue;

/// Loads the digest key at `path`, creating it (32 random bytes, mode 0600) on first use.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = hex::decode(text.trim()).with_context(|| {
                format!(
                    "{} is corrupt; delete it to create a new key",
                    path.display()
                )
            })?;
            if key.len() < 32 {
                bail!(
                    "{} is too short; delete it to create a new key",
                    path.display()
                );
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = super::store::random_hex()?;
            super::store::write_private(path, key.as_bytes())?;
            Ok(hex::decode(key)?)
        }
        Err(e) => bail!("could not read {}: {e}", path.display()),
    }
}

/// HMAC-SHA256 over the length-prefixed, sorted `key=value` pairs, as hex.
pub fn keyed_digest<'a>(
    key: &[u8],
    pairs: impl IntoIterator<Item = (&'a str, &'a SecretValue)>,
) -> String {
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for (k, v) in pairs {
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        mac.update(&(k.len() as u64).to_be_bytes());
        mac.update(k.as_bytes());
        mac.update(&(v.len() as u64).to_be_bytes());
        mac.update(v.expose().as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(key: &[u8], pairs: &[(&str, &str)]) -> String {
        let owned: Vec<(String, SecretValue)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v)))
            .collect();
        keyed_digest(key, owned.iter().map(|(k, v)| (k.as_str(), v)))
    }

    #[test]
    fn digest_depends_on_key_values_and_framing_not_order() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let base = d(&k1, &[("A", "x"), ("B", "y")]);
        assert_eq!(base, d(&k1, &[("B", "y"), ("A", "x")]));
        assert_ne!(base, d(&k2, &[("A", "x"), ("B", "y")]));
        assert_ne!(base, d(&k1, &[("A", "x"), ("B", "z")]));
        assert_ne!(d(&k1, &[("A", "bc")]), d(&k1, &[("Ab", "c")]));
        // Not the plain SHA-256 of the value.
        assert!(!base.contains(&hex::encode(<Sha256 as sha2::Digest>::digest(b"x"))));
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret-digest.key");
        let a = load_or_create_key(&p).unwrap();
        let b = load_or_create_key(&p).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&p, "zz").unwrap();
        assert!(load_or_create_key(&p).is_err());
    }
}
