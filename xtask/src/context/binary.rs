//! A build context of one binary: the runtime Dockerfile and the binary beside it, streamed to
//! `docker build -` straight from the builder's `docker cp CONTAINER:PATH -` tar, the binary
//! hashed as it passes and compared with the digest the image was keyed with.

use std::io::{self, Read, Write};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

/// The Dockerfile's name inside the context.
pub const DOCKERFILE: &str = "Dockerfile";

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that refuses every write once `closed` is set: the tar builder writes its
/// end-of-archive blocks when dropped, which would make a refused context look complete.
struct Gate<'w> {
    out: &'w mut dyn Write,
    closed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Write for Gate<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed.get() {
            return Err(io::Error::other("the build context was refused"));
        }
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes to `out` a context tar of `dockerfile` (as [`DOCKERFILE`]) and the binary `name`
/// (mode 0755), taken from `copied`, a tar holding one regular file. Fails, before the tar is
/// complete (so the build is stopped), when the binary's SHA-256 is not `digest`.
pub fn send(
    dockerfile: &[u8],
    name: &str,
    copied: impl Read,
    digest: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let closed = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut tar = tar::Builder::new(Gate {
        out,
        closed: closed.clone(),
    });
    let sent = write_entries(&mut tar, dockerfile, name, copied, digest);
    if sent.is_err() {
        // Whatever failed (the copy, the digest), the tar must not end as if complete.
        closed.set(true);
        return sent;
    }
    tar.finish().context("finishing the build context")?;
    Ok(())
}

fn write_entries(
    tar: &mut tar::Builder<Gate<'_>>,
    dockerfile: &[u8],
    name: &str,
    copied: impl Read,
    digest: &str,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, DOCKERFILE, dockerfile)
        .context("sending the Dockerfile")?;

    let mut archive = tar::Archive::new(copied);
    let mut entries = archive.entries().context("reading the binary's tar")?;
    let entry = loop {
        let entry = entries
            .next()
            .with_context(|| format!("the builder sent no file for `{name}`"))?
            .context("reading the binary's tar")?;
        if entry.header().entry_type() == tar::EntryType::Regular {
            break entry;
        }
    };
    let size = entry.header().size().context("reading the binary's size")?;
    let mut hashing = Hashing {
        inner: entry,
        hasher: Sha256::new(),
    };
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, &mut hashing)
        .with_context(|| format!("sending the binary `{name}`"))?;
    let sent = hex::encode(hashing.hasher.finalize());
    if sent != digest {
        bail!(
            "the builder's `{name}` is not the binary this image was keyed with (sha256 {sent}, \
             keyed {digest}): it changed after it was built; run again"
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn copied(name: &str, content: &[u8]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, content).unwrap();
        tar.into_inner().unwrap()
    }

    #[test]
    fn the_context_holds_the_dockerfile_and_the_keyed_binary() {
        let binary = b"\x7fELF pretend";
        let digest = hex::encode(Sha256::digest(binary));
        let mut out = Vec::new();
        send(
            b"FROM x\n",
            "app",
            copied("app", binary).as_slice(),
            &digest,
            &mut out,
        )
        .unwrap();
        let mut archive = tar::Archive::new(out.as_slice());
        let got: Vec<(String, u32, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                    data,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Dockerfile".to_owned(), 0o644, b"FROM x\n".to_vec()),
                ("app".to_owned(), 0o755, binary.to_vec())
            ]
        );
    }

    #[test]
    fn another_binary_is_refused_and_the_tar_left_unfinished() {
        let mut out = Vec::new();
        let err = send(
            b"FROM x\n",
            "app",
            copied("app", b"other").as_slice(),
            "00",
            &mut out,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("is not the binary this image was keyed with")
        );
        // No end-of-archive blocks: docker would not take it for a complete context.
        assert!(!out.ends_with(&[0u8; 1024]));
    }
}
