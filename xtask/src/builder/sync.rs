//! Syncing sources into the builder: only what changed since the last sync.
//!
//! The builder keeps a manifest of what it holds (path → digest, [`MANIFEST`] at the root of
//! its sources). A sync reads it, removes it (an interrupted sync then leaves no manifest, and
//! the next one sends everything), deletes what is gone, extracts a tar of what is new or
//! changed, and writes the new manifest as the tar's last entry. Extraction stamps files with
//! the builder's clock (`tar -m`), so cargo's mtime fingerprints see exactly the files that
//! changed, and a file put back with an old mtime is still newer than the last build.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

/// The manifest's path, relative to the builder's sources.
pub const MANIFEST: &str = ".xtask-sources";

/// Path (root-relative, `/`) → digest as the engine keys files: content SHA-256 in hex, with
/// `+x` when executable.
pub type Manifest = BTreeMap<String, String>;

/// The manifest as text: one `DIGEST PATH` line per file.
pub fn render(manifest: &Manifest) -> String {
    manifest
        .iter()
        .map(|(path, digest)| format!("{digest} {path}\n"))
        .collect()
}

/// A manifest read back; anything unreadable reads as empty, so everything is sent again.
pub fn parse(text: &str) -> Manifest {
    let mut out = Manifest::new();
    for line in text.lines() {
        let Some((digest, path)) = line.split_once(' ') else {
            return Manifest::new();
        };
        out.insert(path.to_owned(), digest.to_owned());
    }
    out
}

/// What a sync does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New or changed files.
    pub send: Vec<String>,
    /// Files the builder holds that are gone.
    pub delete: Vec<String>,
}

/// What turns `held` into `wanted`.
pub fn diff(held: &Manifest, wanted: &Manifest) -> Changes {
    Changes {
        send: wanted
            .iter()
            .filter(|(p, d)| held.get(*p) != Some(*d))
            .map(|(p, _)| p.clone())
            .collect(),
        delete: held
            .keys()
            .filter(|p| !wanted.contains_key(*p))
            .cloned()
            .collect(),
    }
}

/// The digest of generated content, as [`Manifest`] holds it.
pub fn digest_of(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// A tar of `send`, each read from `root` (or taken from `generated`) and checked against its
/// digest in `wanted` as it is read, then the manifest `wanted` as the last entry. A file whose
/// bytes are not what was keyed fails the sync, naming it.
pub fn tar(
    root: &Path,
    wanted: &Manifest,
    generated: &BTreeMap<String, Vec<u8>>,
    send: &[String],
) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for path in send {
        let want = wanted
            .get(path)
            .with_context(|| format!("`{path}` is to be sent but was not keyed"))?;
        let content = match generated.get(path) {
            Some(content) => content.clone(),
            None => {
                let mut content = Vec::new();
                std::fs::File::open(root.join(path))
                    .and_then(|mut f| f.read_to_end(&mut content))
                    .with_context(|| {
                        format!("`{path}` changed during the build (it cannot be read); run again")
                    })?;
                content
            }
        };
        let (sha, executable) = match want.strip_suffix("+x") {
            Some(sha) => (sha, true),
            None => (want.as_str(), false),
        };
        if digest_of(&content) != sha {
            bail!("`{path}` changed during the build (its content); run again");
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(if executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, content.as_slice())
            .with_context(|| format!("adding `{path}` to the sources' tar"))?;
    }
    let manifest = render(wanted);
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, MANIFEST, manifest.as_bytes())
        .context("adding the manifest to the sources' tar")?;
    builder.into_inner().context("finishing the sources' tar")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn manifest(pairs: &[(&str, &str)]) -> Manifest {
        pairs
            .iter()
            .map(|(p, d)| ((*p).to_owned(), (*d).to_owned()))
            .collect()
    }

    #[test]
    fn a_manifest_reads_back_and_garbage_reads_as_empty() {
        let m = manifest(&[("a b/c.rs", "11"), ("x", "22+x")]);
        assert_eq!(parse(&render(&m)), m);
        assert_eq!(parse("no-space-here\n"), Manifest::new());
        assert_eq!(parse(""), Manifest::new());
    }

    #[test]
    fn only_changes_are_sent_and_gone_files_deleted() {
        let held = manifest(&[("keep", "1"), ("edit", "2"), ("gone", "3")]);
        let wanted = manifest(&[("keep", "1"), ("edit", "9"), ("new", "4"), ("mode", "5+x")]);
        let mut held_mode = held.clone();
        held_mode.insert("mode".into(), "5".into());
        assert_eq!(
            diff(&held_mode, &wanted),
            Changes {
                send: vec!["edit".into(), "mode".into(), "new".into()],
                delete: vec!["gone".into()],
            }
        );
    }

    #[test]
    fn the_tar_holds_the_keyed_bytes_and_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a.rs"), "fn a() {}\n").unwrap();
        let mut wanted = manifest(&[("src/a.rs", &digest_of(b"fn a() {}\n"))]);
        let generated = BTreeMap::from([("stub/main.rs".to_owned(), b"fn main() {}\n".to_vec())]);
        wanted.insert(
            "stub/main.rs".into(),
            format!("{}+x", digest_of(b"fn main() {}\n")),
        );
        let send = vec!["src/a.rs".to_owned(), "stub/main.rs".to_owned()];
        let bytes = tar(dir.path(), &wanted, &generated, &send).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("src/a.rs".to_owned(), 0o644),
                ("stub/main.rs".to_owned(), 0o755),
                (MANIFEST.to_owned(), 0o644)
            ]
        );
        std::fs::write(dir.path().join("src/a.rs"), "fn b() {}\n").unwrap();
        let err = tar(dir.path(), &wanted, &generated, &send).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`src/a.rs` changed during the build (its content); run again"
        );
    }
}
