//! Sending a build context exactly as it was keyed: the tar is parsed as it streams to the
//! daemon, every file hashed as it is sent and compared with the digests its key was computed
//! from, so a file edited between planning and sending fails the build instead of recording an
//! image under a key that does not describe it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::{ContextError, ContextFiles, EntryKind};

/// The digests a key was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    /// Content SHA-256 (hex) of every regular file, by its path in the context (= in the tar).
    pub files: BTreeMap<String, String>,
    /// Content SHA-256 (hex) of the Dockerfile (it may lie outside the context).
    pub dockerfile: String,
}

impl Keyed {
    /// One digest over every file's path and content digest, and the Dockerfile's.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (path, sha) in &self.files {
            h.update(path.as_bytes());
            h.update(b"\0");
            h.update(sha.as_bytes());
            h.update(b"\n");
        }
        h.update(b"dockerfile\0");
        h.update(self.dockerfile.as_bytes());
        hex::encode(h.finalize())
    }
}

/// How the user names the context's paths: relative to the project root.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    /// The context directory, relative to the project root.
    pub context: &'a str,
    /// The Dockerfile, relative to the project root.
    pub dockerfile: &'a str,
}

impl Shown<'_> {
    /// The path of a context file as the user knows it.
    pub fn path(&self, context_path: &str) -> String {
        match self.context.trim_end_matches('/') {
            "" | "." => context_path.to_owned(),
            dir => format!("{}/{context_path}", dir.trim_start_matches("./")),
        }
    }
}

/// What the tar must contain: the keyed digests and modes, by path in the tar.
struct Expected<'a> {
    files: BTreeMap<&'a str, (&'a str, u32)>,
    /// The Dockerfile's path in the tar when it is added outside the listing, and its digest.
    extra_dockerfile: Option<(&'a str, &'a str)>,
    /// A `.dockerignore` written by the tar writer rather than read from the tree.
    synthetic_ignore: bool,
}

/// Why a sent file does not match its key.
#[derive(Debug, thiserror::Error)]
#[error("`{path}` changed during the build ({what}); run again")]
pub struct ChangedDuringBuild {
    /// The file, relative to the project root.
    pub path: String,
    /// What differs.
    pub what: &'static str,
}

/// A reader that copies everything read through it to `out`: the tar parser reads the
/// stream, and exactly the bytes it parsed go to docker.
struct Tee<'w, R> {
    inner: R,
    out: &'w mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Streams the tar of `snapshot` to `out`, hashing each file as it is sent; fails on the first
/// file whose content or mode is not what the key was computed from.
pub fn send_verified(
    files: &ContextFiles,
    keyed: &Keyed,
    shown: &Shown<'_>,
    out: &mut dyn Write,
) -> Result<()> {
    let plan = super::tar_plan(files)?;
    let mut expected = Expected {
        files: BTreeMap::new(),
        extra_dockerfile: plan
            .extra_dockerfile
            .then_some((plan.dockerfile.as_str(), keyed.dockerfile.as_str())),
        synthetic_ignore: plan.dockerignore_override.is_some(),
    };
    for (entry, _) in files.files() {
        if let EntryKind::File { mode, .. } = entry.kind {
            let sha = keyed
                .files
                .get(&entry.path)
                .with_context(|| format!("`{}` was listed but not keyed", entry.path))?;
            expected
                .files
                .insert(entry.path.as_str(), (sha.as_str(), mode));
        }
    }
    let (reader, writer) = io::pipe().context("creating a pipe for the build context")?;
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || super::write_tar(files, writer));
        // `reader` is moved in and dropped on return, so an early failure unblocks the writer.
        let checked = check_tar(shown, reader, out, &expected);
        let produced = producer.join().unwrap_or_else(|_| {
            Err(ContextError::TarPlan {
                dockerfile: files.dockerfile.clone(),
                reason: "the tar writer panicked".into(),
            })
        });
        match (checked, produced) {
            // The writer's own error (a file that vanished or shrank) says more than the
            // parser's unexpected end of stream; a broken pipe only echoes our failure.
            (Err(e), _) if e.downcast_ref::<ChangedDuringBuild>().is_some() => Err(e),
            (_, Err(e)) if !is_broken_pipe(&e) => {
                Err(anyhow::Error::new(e).context("writing the build context"))
            }
            (Err(e), _) => Err(e),
            (Ok(()), _) => Ok(()),
        }
    })
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Parses the tar stream from `reader`, forwarding every byte to `out`, and checks each
/// regular file against `expected`.
fn check_tar(
    shown: &Shown<'_>,
    reader: impl Read,
    out: &mut dyn Write,
    expected: &Expected<'_>,
) -> Result<()> {
    let mut tee = Tee { inner: reader, out };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    {
        let mut archive = tar::Archive::new(&mut tee);
        for entry in archive.entries().context("reading the build-context tar")? {
            let mut entry = entry.context("reading the build-context tar")?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = String::from_utf8(entry.path_bytes().into_owned())
                .context("a build-context path is not UTF-8")?;
            let mode = entry.header().mode().context("reading a tar mode")? & 0o7777;
            let mut hasher = HashWriter(Sha256::new());
            io::copy(&mut entry, &mut hasher)
                .with_context(|| format!("streaming `{}`", shown.path(&path)))?;
            let sha = hex::encode(hasher.0.finalize());
            if let Some((want, want_mode)) = expected.files.get(path.as_str()) {
                if sha != *want {
                    return Err(changed(shown.path(&path), "its content"));
                }
                if mode != *want_mode {
                    return Err(changed(shown.path(&path), "its permissions"));
                }
            } else if let Some((tar_path, want)) = expected.extra_dockerfile
                && path == tar_path
            {
                if sha != want {
                    return Err(changed(shown.dockerfile.to_owned(), "its content"));
                }
            } else if !(path == ".dockerignore" && expected.synthetic_ignore) {
                bail!(
                    "the build-context tar holds `{}`, which was not keyed; run again",
                    shown.path(&path)
                );
            }
            seen.insert(path);
        }
    }
    if let Some(missing) = expected.files.keys().find(|p| !seen.contains(**p)) {
        return Err(changed(shown.path(missing), "it was not sent"));
    }
    // The end-of-archive blocks the parser did not need still belong to the stream.
    io::copy(&mut tee, &mut io::sink()).context("streaming the build context")?;
    Ok(())
}

fn changed(path: String, what: &'static str) -> anyhow::Error {
    ChangedDuringBuild { path, what }.into()
}

/// A `Write` that only hashes.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
