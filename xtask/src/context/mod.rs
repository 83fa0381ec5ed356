//! The Docker build context: which files `docker build -f DOCKERFILE CONTEXT` makes visible to
//! the build, and a tar of exactly those files for `docker build -f NAME -`.
//!
//! How Docker does it (classic builder, which is what this machine's 20.10 engine runs):
//! 1. the CLI reads `CONTEXT/.dockerignore` (only that file), appends `!.dockerignore` and
//!    `!DOCKERFILE` when they are excluded (`TrimBuildFilesFromExcludes`), and tars the context
//!    with `TarWithOptions`: a walk that matches each path with `MatchesUsingParentResults` and
//!    prunes an excluded directory unless some `!` pattern *literally starts with* `dir/`;
//! 2. the daemon unpacks the tar (creating missing parent directories), then deletes
//!    `.dockerignore` and the Dockerfile again if `.dockerignore` excludes them.
//!
//! [`list`] reproduces both steps. When `<DOCKERFILE>.dockerignore` exists we follow BuildKit's
//! documented rule instead (that file replaces the root `.dockerignore`; Dockerfile and ignore
//! files are ordinary files), because the classic builder ignores per-Dockerfile ignore files;
//! [`write_tar`] then makes the classic builder receive exactly our list anyway.

pub mod binary;
pub mod dockerfile;
pub mod dockerignore;
mod verify;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use dockerignore::{MatchInfo, PatternError, PatternMatcher};

pub use verify::{ChangedDuringBuild, Keyed, Shown, send_verified};

/// Why the build context could not be listed or written.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A file or directory could not be read.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing, e.g. "reading".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The context directory is missing or not a directory.
    #[error("build context {path} is not a directory; pass the directory `docker build` gets")]
    NotADirectory {
        /// The context path given.
        path: PathBuf,
    },
    /// The Dockerfile is missing.
    #[error("Dockerfile {path} not found: {source}; fix the dockerfile path of this image")]
    MissingDockerfile {
        /// The Dockerfile path given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An ignore file has a pattern Docker rejects (or that we refuse to guess).
    #[error("{file}:{line}: {source}")]
    Pattern {
        /// The ignore file.
        file: PathBuf,
        /// 1-based line of the pattern (0 for patterns Docker adds itself).
        line: usize,
        /// What is wrong.
        source: PatternError,
    },
    /// A file that would be sent has a name that is not UTF-8.
    #[error("{path}: the file name is not valid UTF-8; rename it or exclude it in {ignore_file}")]
    NonUtf8Name {
        /// Lossy rendering of the path.
        path: PathBuf,
        /// The ignore file to edit.
        ignore_file: String,
    },
    /// A FIFO or device file that would be sent.
    #[error(
        "{path}: special files (FIFOs, devices) are not supported in a build context; exclude it in {ignore_file}"
    )]
    SpecialFile {
        /// The file.
        path: PathBuf,
        /// The ignore file to edit.
        ignore_file: String,
    },
    /// The Dockerfile cannot be placed in the tar so that the daemon both reads it and hides it
    /// as `docker build` would (only with exotic names containing pattern characters).
    #[error("cannot stream the context of {dockerfile}: {reason}")]
    TarPlan {
        /// The Dockerfile.
        dockerfile: PathBuf,
        /// Why.
        reason: String,
    },
}

type Result<T, E = ContextError> = std::result::Result<T, E>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContextError {
    let path = path.to_path_buf();
    move |source| ContextError::Io {
        action,
        path,
        source,
    }
}

/// The ignore file that decided what is excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreSource {
    /// No ignore file: everything is sent.
    None,
    /// `CONTEXT/.dockerignore` (the classic builder's only source).
    Root(PathBuf),
    /// `<Dockerfile>.dockerignore`, which takes precedence (BuildKit rule).
    PerDockerfile(PathBuf),
}

impl IgnoreSource {
    /// The ignore file's path, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            IgnoreSource::None => None,
            IgnoreSource::Root(p) | IgnoreSource::PerDockerfile(p) => Some(p),
        }
    }

    fn describe(&self) -> String {
        match self.path() {
            Some(p) => p.display().to_string(),
            None => "a .dockerignore file".to_string(),
        }
    }
}

/// What kind of context entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (hard links are sent as regular files too).
    File {
        /// Permission bits (`mode & 0o7777`); the executable bit matters to the image.
        mode: u32,
        /// Size in bytes when listed.
        size: u64,
    },
    /// A symbolic link, sent as a link (never followed).
    Symlink {
        /// The link's target, as stored.
        target: PathBuf,
    },
    /// A directory, sent with its permission bits (they become the directory's mode in the
    /// build context, and `COPY` keeps them). Empty directories are sent too.
    Dir {
        /// Permission bits (`mode & 0o7777`) when listed.
        mode: u32,
    },
}

/// One path the build sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, '/'-separated path inside the context.
    pub path: String,
    /// File, symlink or directory.
    pub kind: EntryKind,
}

/// Everything `docker build` would make visible to `COPY . /dst`, sorted by path bytes.
#[derive(Debug, Clone)]
pub struct ContextFiles {
    /// Canonical context directory.
    pub context_dir: PathBuf,
    /// Canonical Dockerfile path (may lie outside the context).
    pub dockerfile: PathBuf,
    /// The Dockerfile's path relative to the context when it lies inside it.
    pub dockerfile_in_context: Option<String>,
    /// The ignore file that applied.
    pub ignore: IgnoreSource,
    /// Sorted entries (files, symlinks and directories, parents before children).
    pub entries: Vec<Entry>,
}

impl ContextFiles {
    /// Regular files only, with their absolute paths: what a content hasher reads.
    pub fn files(&self) -> impl Iterator<Item = (&Entry, PathBuf)> {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .map(|e| (e, self.context_dir.join(&e.path)))
    }

    /// The layout as text, one line per entry in order: `d PATH MODE`, `l PATH -> TARGET`,
    /// `f PATH MODE` (modes in octal). Add it to a cache key next to the file digests: empty
    /// directories, symlinks and modes change the image but have no content to hash.
    pub fn manifest(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            match &e.kind {
                EntryKind::Dir { mode } => out.push_str(&format!("d {} {mode:o}\n", e.path)),
                EntryKind::Symlink { target } => {
                    out.push_str(&format!("l {} -> {}\n", e.path, target.to_string_lossy()))
                }
                EntryKind::File { mode, .. } => out.push_str(&format!("f {} {mode:o}\n", e.path)),
            }
        }
        out
    }

    /// Whether `path` is in the list.
    pub fn contains(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    fn find(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// List what `docker build -f dockerfile context_dir` makes visible to the build.
///
/// `dockerfile` may be absolute or relative to the current directory (as with `docker build
/// -f`); pass absolute paths. Excluded directories are pruned before they are read; no file
/// content is read except the ignore file.
pub fn list(context_dir: &Path, dockerfile: &Path) -> Result<ContextFiles> {
    let context = fs::canonicalize(context_dir).map_err(|_| ContextError::NotADirectory {
        path: context_dir.to_path_buf(),
    })?;
    if !context.is_dir() {
        return Err(ContextError::NotADirectory {
            path: context_dir.to_path_buf(),
        });
    }
    let dockerfile_abs =
        fs::canonicalize(dockerfile).map_err(|source| ContextError::MissingDockerfile {
            path: dockerfile.to_path_buf(),
            source,
        })?;
    let dockerfile_in_context = dockerfile_abs
        .strip_prefix(&context)
        .ok()
        .map(|rel| slash_path(rel).ok_or_else(|| non_utf8(rel, &IgnoreSource::None)))
        .transpose()?;

    let per_dockerfile = {
        let mut name = OsString::from(dockerfile.as_os_str());
        name.push(".dockerignore");
        PathBuf::from(name)
    };
    let root_ignore = context.join(".dockerignore");
    let ignore = if per_dockerfile.is_file() {
        IgnoreSource::PerDockerfile(per_dockerfile)
    } else if root_ignore.exists() {
        IgnoreSource::Root(root_ignore)
    } else {
        IgnoreSource::None
    };

    let lines = match ignore.path() {
        Some(path) => {
            let bytes = fs::read(path).map_err(io_err("reading", path))?;
            dockerignore::read_patterns(&bytes).map_err(|source| ContextError::Pattern {
                file: path.to_path_buf(),
                line: match source {
                    PatternError::LineTooLong { line } => line,
                    _ => 0,
                },
                source,
            })?
        }
        None => Vec::new(),
    };
    let mut patterns: Vec<String> = lines.iter().map(|l| l.pattern.clone()).collect();
    let pattern_error = |source: PatternError| {
        // Map the failing pattern back to its line: compile them one by one.
        let line = lines
            .iter()
            .find(|l| PatternMatcher::new(&[l.pattern.as_str()]).is_err())
            .map_or(0, |l| l.line);
        ContextError::Pattern {
            file: ignore.path().map(Path::to_path_buf).unwrap_or_default(),
            line,
            source,
        }
    };
    // Validate the user's patterns first so errors point at their lines.
    let user_matcher = PatternMatcher::new(&patterns).map_err(pattern_error)?;

    let classic = matches!(ignore, IgnoreSource::Root(_) | IgnoreSource::None);
    // Step 1 (CLI): force the build files into the tar, as TrimBuildFilesFromExcludes does.
    if classic {
        if user_matcher_legacy(&patterns, ".dockerignore") {
            patterns.push("!.dockerignore".to_string());
        }
        if let Some(rel) = &dockerfile_in_context
            && user_matcher_legacy(&patterns, rel)
        {
            patterns.push(format!("!{rel}"));
        }
    }
    let matcher = PatternMatcher::new(&patterns).map_err(|source| ContextError::Pattern {
        file: ignore.path().map(Path::to_path_buf).unwrap_or_default(),
        line: 0,
        source,
    })?;

    let mut sent = walk(&context, &matcher, &ignore)?;

    // Step 2 (daemon): delete .dockerignore and the Dockerfile if .dockerignore excludes them;
    // directories created for them while unpacking stay.
    let mut implied: BTreeSet<String> = BTreeSet::new();
    for entry in &sent {
        let mut path = entry.path.as_str();
        while let Some(i) = path.rfind('/') {
            path = &path[..i];
            implied.insert(path.to_string());
        }
    }
    if classic && matches!(ignore, IgnoreSource::Root(_)) {
        let mut removed = vec![".dockerignore".to_string()];
        removed.extend(dockerfile_in_context.clone());
        removed.retain(|p| user_matcher.matches_legacy(&dockerignore::go_clean(p)));
        sent.retain(|e| !removed.contains(&e.path));
    }
    let present: std::collections::HashSet<String> = sent.iter().map(|e| e.path.clone()).collect();
    for dir in implied {
        if !present.contains(&dir) {
            let abs = context.join(&dir);
            let meta = fs::symlink_metadata(&abs).map_err(io_err("reading metadata of", &abs))?;
            sent.push(Entry {
                path: dir,
                kind: EntryKind::Dir {
                    mode: meta.permissions().mode() & 0o7777,
                },
            });
        }
    }
    sent.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(ContextFiles {
        context_dir: context,
        dockerfile: dockerfile_abs,
        dockerfile_in_context,
        ignore,
        entries: sent,
    })
}

/// `patternmatcher.Matches` (deprecated variant) over the current pattern list; patterns were
/// validated already, so a compile error cannot happen here and counts as "no match".
fn user_matcher_legacy(patterns: &[String], file: &str) -> bool {
    dockerignore::matches_legacy(file, patterns).unwrap_or(false)
}

fn slash_path(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/"))
}

fn non_utf8(path: &Path, ignore: &IgnoreSource) -> ContextError {
    ContextError::NonUtf8Name {
        path: path.to_path_buf(),
        ignore_file: ignore.describe(),
    }
}

/// The CLI's `TarWithOptions` walk: matches with parent results, prunes excluded directories
/// unless a `!` pattern starts with `dir/`, never follows symlinks, skips sockets.
fn walk(context: &Path, matcher: &PatternMatcher, ignore: &IgnoreSource) -> Result<Vec<Entry>> {
    // Stack of walked directories and their per-pattern results, like the CLI's parentDirs.
    let mut parents: Vec<(String, MatchInfo)> = Vec::new();
    // The predicate decides; the loop body only collects what it accepted.
    let include = std::cell::Cell::new(false);
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(context)
        .min_depth(1)
        .follow_links(false)
        .sort_by(|a, b| {
            use std::os::unix::ffi::OsStrExt;
            a.file_name().as_bytes().cmp(b.file_name().as_bytes())
        })
        .into_iter()
        .filter_entry(|entry| {
            let rel = entry.path().strip_prefix(context).unwrap_or(entry.path());
            let rel = rel.to_string_lossy().into_owned();
            while let Some((dir, _)) = parents.last() {
                if rel.starts_with(dir.as_str()) && rel.as_bytes().get(dir.len()) == Some(&b'/') {
                    break;
                }
                parents.pop();
            }
            let empty = MatchInfo::default();
            let parent_info = parents.last().map_or(&empty, |(_, info)| info);
            let (skip, info) = matcher.matches_using_parent_results(&rel, parent_info);
            let is_dir = entry.file_type().is_dir();
            if is_dir {
                parents.push((rel.clone(), info));
            }
            if !skip {
                include.set(true);
                return true;
            }
            include.set(false);
            if !is_dir || !matcher.exclusions() {
                return false;
            }
            let dir_slash = format!("{rel}/");
            matcher
                .patterns()
                .iter()
                .filter(|p| p.is_exclusion())
                .any(|p| format!("{}/", p.as_str()).starts_with(&dir_slash))
        });
    for item in walker {
        let entry = item.map_err(|err| {
            let path = err.path().unwrap_or(context).to_path_buf();
            let source = err
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("filesystem loop"));
            ContextError::Io {
                action: "reading",
                path,
                source,
            }
        })?;
        if !include.get() {
            continue;
        }
        let rel_path = entry.path().strip_prefix(context).unwrap_or(entry.path());
        let rel = slash_path(rel_path).ok_or_else(|| non_utf8(entry.path(), ignore))?;
        let file_type = entry.file_type();
        let metadata = || {
            entry.metadata().map_err(|e| ContextError::Io {
                action: "reading metadata of",
                path: entry.path().to_path_buf(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("metadata")),
            })
        };
        let kind = if file_type.is_dir() {
            EntryKind::Dir {
                mode: metadata()?.permissions().mode() & 0o7777,
            }
        } else if file_type.is_symlink() {
            let target =
                fs::read_link(entry.path()).map_err(io_err("reading link", entry.path()))?;
            EntryKind::Symlink { target }
        } else if file_type.is_file() {
            let meta = metadata()?;
            EntryKind::File {
                mode: meta.permissions().mode() & 0o7777,
                size: meta.len(),
            }
        } else if file_type.is_socket() {
            // Docker's tar writer cannot archive sockets and skips them.
            continue;
        } else {
            return Err(ContextError::SpecialFile {
                path: entry.path().to_path_buf(),
                ignore_file: ignore.describe(),
            });
        };
        out.push(Entry { path: rel, kind });
    }
    Ok(out)
}

/// How [`write_tar`] lays out the tar; pass `dockerfile` to `docker build -f`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarPlan {
    /// The Dockerfile's path inside the tar: `docker build -f <this> -`.
    pub dockerfile: String,
    /// Whether the Dockerfile is an extra tar entry that the daemon deletes after reading it
    /// (it is excluded, or lives outside the context).
    pub extra_dockerfile: bool,
    /// The `.dockerignore` written into the tar when it differs from the context's file:
    /// a synthetic one (when none is visible) or the visible one with lines appended, which the
    /// daemon needs to hide the Dockerfile. `None` when the visible file is sent as is.
    pub dockerignore_override: Option<Vec<u8>>,
}

/// Top-level name for a Dockerfile that must not be visible; never collides with an entry.
fn hidden_name(files: &ContextFiles) -> String {
    let mut name = ".xtask-dockerfile".to_string();
    let mut n = 0;
    while files.contains(&name) {
        n += 1;
        name = format!(".xtask-dockerfile-{n}");
    }
    name
}

/// Decide where the Dockerfile goes and what `.dockerignore` the daemon will read, so that
/// after the daemon's own clean-up the build sees exactly `files.entries`.
pub fn tar_plan(files: &ContextFiles) -> Result<TarPlan> {
    let plan_err = |reason: String| ContextError::TarPlan {
        dockerfile: files.dockerfile.clone(),
        reason,
    };
    let visible_ignore = matches!(
        files.find(".dockerignore").map(|e| &e.kind),
        Some(EntryKind::File { .. } | EntryKind::Symlink { .. })
    );
    let original = if visible_ignore {
        let path = files.context_dir.join(".dockerignore");
        fs::read(&path).map_err(io_err("reading", &path))?
    } else {
        Vec::new()
    };
    let daemon_patterns = |content: &[u8]| -> Result<Vec<String>> {
        let lines = dockerignore::read_patterns(content)
            .map_err(|e| plan_err(format!("the .dockerignore the daemon reads: {e}")))?;
        Ok(lines.into_iter().map(|l| l.pattern).collect())
    };
    let removes = |patterns: &[String], path: &str| user_matcher_legacy(patterns, path);

    let mut appended: Vec<String> = Vec::new();
    let mut synthetic = false;
    let base = if visible_ignore {
        daemon_patterns(&original)?
    } else {
        Vec::new()
    };
    if visible_ignore && removes(&base, ".dockerignore") {
        appended.push("!.dockerignore".to_string());
    }
    let listed_dockerfile = files.dockerfile_in_context.as_ref().filter(|rel| {
        matches!(
            files.find(rel).map(|e| &e.kind),
            Some(EntryKind::File { .. })
        )
    });
    let (name, extra) = if let Some(rel) = listed_dockerfile {
        if visible_ignore && removes(&base, rel) {
            appended.push(format!("!{rel}"));
        }
        (rel.clone(), false)
    } else if let Some(rel) = files.dockerfile_in_context.as_ref().filter(|rel| {
        // Ship it at its own path when the daemon deletes it there anyway and all its parent
        // directories are visible (so unpacking it creates nothing extra).
        visible_ignore
            && removes(&base, rel)
            && !files.contains(rel)
            && parent_dirs(rel)
                .all(|d| matches!(files.find(d).map(|e| &e.kind), Some(EntryKind::Dir { .. })))
    }) {
        (rel.clone(), true)
    } else {
        let name = hidden_name(files);
        if visible_ignore {
            appended.push(name.clone());
        } else {
            synthetic = true;
        }
        (name, true)
    };

    let dockerignore_override = if synthetic {
        Some(format!(".dockerignore\n{name}\n").into_bytes())
    } else if !appended.is_empty() {
        let mut content = original.clone();
        for line in &appended {
            content.extend_from_slice(format!("\n{line}\n").as_bytes());
        }
        Some(content)
    } else {
        None
    };

    // Check the plan against the daemon's rule, so exotic names fail loudly instead of
    // silently changing what the build sees.
    let shipped_ignore = dockerignore_override
        .as_deref()
        .or(visible_ignore.then_some(&original[..]));
    if let Some(content) = shipped_ignore {
        let patterns = daemon_patterns(content)?;
        if removes(&patterns, ".dockerignore") == visible_ignore {
            return Err(plan_err(
                "the daemon would not keep/hide .dockerignore as listed".to_string(),
            ));
        }
        if removes(&patterns, &name) != extra {
            return Err(plan_err(format!(
                "the daemon would not keep/hide the Dockerfile shipped as {name}; \
                 rename the Dockerfile or its directory without pattern characters"
            )));
        }
    } else if extra {
        return Err(plan_err(
            "no .dockerignore to hide the Dockerfile".to_string(),
        ));
    }
    Ok(TarPlan {
        dockerfile: name,
        extra_dockerfile: extra,
        dockerignore_override,
    })
}

/// `a`, `a/b` for `a/b/c`.
fn parent_dirs(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Stream a tar of exactly `files` (plus the Dockerfile, and the `.dockerignore` the daemon
/// needs, per [`tar_plan`]) to `out`; feed it to `docker build -f <plan.dockerfile> -`.
///
/// Owners are 0:0, mtimes are 0 (reproducible), permission bits are kept; file contents are
/// streamed, never held in memory.
pub fn write_tar<W: Write>(files: &ContextFiles, out: W) -> Result<TarPlan> {
    let plan = tar_plan(files)?;
    let mut builder = tar::Builder::new(out);
    let tar_err = |path: &str| {
        let path = PathBuf::from(path);
        move |source: io::Error| ContextError::Io {
            action: "writing to the build-context tar",
            path,
            source,
        }
    };
    for entry in &files.entries {
        let abs = files.context_dir.join(&entry.path);
        if entry.path == ".dockerignore"
            && !matches!(entry.kind, EntryKind::Dir { .. })
            && let Some(content) = &plan.dockerignore_override
        {
            let mode = fs::metadata(&abs)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644);
            append_bytes(&mut builder, ".dockerignore", mode, content)?;
            continue;
        }
        match &entry.kind {
            // The mode listed (and keyed), not one read now.
            &EntryKind::Dir { mode } => {
                let mut header = header(tar::EntryType::Directory, mode, 0);
                builder
                    .append_data(&mut header, format!("{}/", entry.path), io::empty())
                    .map_err(tar_err(&entry.path))?;
            }
            EntryKind::Symlink { target } => {
                let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                builder
                    .append_link(&mut header, &entry.path, target)
                    .map_err(tar_err(&entry.path))?;
            }
            EntryKind::File { .. } => append_file(&mut builder, &entry.path, &abs)?,
        }
    }
    if plan.extra_dockerfile {
        append_file(&mut builder, &plan.dockerfile, &files.dockerfile)?;
    }
    if !files.contains(".dockerignore")
        && let Some(content) = &plan.dockerignore_override
    {
        append_bytes(&mut builder, ".dockerignore", 0o600, content)?;
    }
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(tar_err("<end of archive>"))?;
    Ok(plan)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    content: &[u8],
) -> Result<()> {
    let mut header = header(tar::EntryType::Regular, mode, content.len() as u64);
    builder
        .append_data(&mut header, path, content)
        .map_err(|source| ContextError::Io {
            action: "writing to the build-context tar",
            path: PathBuf::from(path),
            source,
        })
}

fn append_file<W: Write>(builder: &mut tar::Builder<W>, path: &str, abs: &Path) -> Result<()> {
    let file = fs::File::open(abs).map_err(io_err("opening", abs))?;
    let meta = file
        .metadata()
        .map_err(io_err("reading metadata of", abs))?;
    let len = meta.len();
    let mut header = header(
        tar::EntryType::Regular,
        meta.permissions().mode() & 0o7777,
        len,
    );
    // A file that shrinks while streaming must fail rather than send a short, padded entry.
    let reader = ExactReader {
        inner: file.take(len),
        left: len,
    };
    builder
        .append_data(&mut header, path, reader)
        .map_err(io_err("streaming into the build-context tar", abs))
}

/// Errors if the inner reader ends before `left` bytes were read.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being sent",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
