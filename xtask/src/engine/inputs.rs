//! The files a selection of tasks reads: what a plan hashes for it (declared `inputs` and the
//! files kinds add), listed without hashing anything, for a caller that watches them.

use std::collections::BTreeSet;

use xshell::Shell;

use super::task::{KeyCx, Target};
use super::{Graph, Session, hash, walk};

/// The root-relative paths (`/` separators) of every input file of `selection` (graph indices).
/// A pattern that matches nothing is skipped here; planning reports it.
pub fn input_paths<T: Target>(
    sh: &Shell,
    session: &Session,
    graph: &Graph<T>,
    target: &T,
    selection: &[usize],
) -> anyhow::Result<BTreeSet<String>> {
    let mut paths = BTreeSet::new();
    for &i in selection {
        let decl = &graph.tasks[i];
        let patterns: Vec<&str> = decl.inputs.iter().map(|(p, _)| p.as_str()).collect();
        let expansion = hash::expand(&session.root, &patterns, walk::MAX_WALK_THREADS)?;
        paths.extend(expansion.files.into_iter().map(|f| f.path));
        let cx = KeyCx {
            sh,
            session,
            target,
            task: &decl.name,
        };
        paths.extend(decl.task.extra_inputs(&cx)?);
    }
    Ok(paths)
}
