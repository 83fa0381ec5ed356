//! Keys: any change to any input changes the key, layout never does; the stat cache follows
//! git's racy-timestamp rule and cannot return a stale digest.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use crate::support::Project;
use proptest::prelude::*;
use xshell::Shell;
use xtask::engine::hash::{Stat, StatCache, digest_files, expand};
use xtask::engine::state::State;
use xtask::engine::{self, Session};
use xtask::target::{DockerTarget, Target};

/// Every task's key, as `plan` computes it (through the stat cache in `target/xtask/`).
fn keys(root: &Path) -> BTreeMap<String, String> {
    let session = Session::new(root.to_path_buf());
    let sh = Shell::new().unwrap();
    sh.change_dir(root);
    let target = Target::Docker(DockerTarget {
        namespace: "todo-app".to_owned(),
        port: 3000,
        registry: None,
        builder: test_support::TEST_BUILDER.to_owned(),
    });
    let graph = engine::load_for(&session, &xtask::registry(), &target).unwrap();
    let selection = graph.select(&[]).unwrap();
    let plan = engine::plan_tasks(
        &sh,
        &session,
        &graph,
        &target,
        &selection,
        &State::default(),
        false,
    )
    .unwrap();
    // Command tasks only: no early cutoff, so every key is known when planning.
    plan.tasks
        .into_iter()
        .map(|t| (t.name, t.key.unwrap()))
        .collect()
}

const ONE: &str = "[tasks.t]\nkind = \"command\"\ninputs = [\"src\"]\nrun = [\"true\"]\n";

fn file_set() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    prop::collection::btree_map(
        "[a-z]{1,6}(/[a-z]{1,6})?",
        prop::collection::vec(any::<u8>(), 0..64),
        1..8,
    )
    // `a` and `a/b` cannot both exist.
    .prop_filter("file and directory with one name", |m| {
        !m.keys()
            .any(|k| m.keys().any(|o| o.starts_with(&format!("{k}/"))))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_content_change_changes_the_key(files in file_set(), pick in any::<prop::sample::Index>(), new in prop::collection::vec(any::<u8>(), 0..64)) {
        let p = Project::new(ONE);
        for (name, content) in &files {
            std::fs::create_dir_all(p.path(&format!("src/{name}")).parent().unwrap()).unwrap();
            std::fs::write(p.path(&format!("src/{name}")), content).unwrap();
        }
        let before = keys(p.root());
        prop_assert_eq!(&keys(p.root()), &before, "keys are deterministic");
        let (name, old) = files.iter().nth(pick.index(files.len())).unwrap();
        prop_assume!(&new != old);
        std::fs::write(p.path(&format!("src/{name}")), &new).unwrap();
        prop_assert_ne!(keys(p.root()), before.clone());
        std::fs::write(p.path(&format!("src/{name}")), old).unwrap();
        prop_assert_eq!(keys(p.root()), before, "restoring the content restores the key");
    }

    #[test]
    fn adding_or_renaming_a_file_changes_the_key(files in file_set(), pick in any::<prop::sample::Index>()) {
        let p = Project::new(ONE);
        for (name, content) in &files {
            std::fs::create_dir_all(p.path(&format!("src/{name}")).parent().unwrap()).unwrap();
            std::fs::write(p.path(&format!("src/{name}")), content).unwrap();
        }
        let before = keys(p.root());
        let (name, _) = files.iter().nth(pick.index(files.len())).unwrap();
        let renamed = format!("src/{name}.renamed");
        std::fs::rename(p.path(&format!("src/{name}")), p.path(&renamed)).unwrap();
        let after_rename = keys(p.root());
        prop_assert_ne!(&after_rename, &before);
        std::fs::write(p.path("src/zz-new"), "").unwrap();
        prop_assert_ne!(keys(p.root()), after_rename);
    }

    #[test]
    fn any_setting_change_changes_the_key(arg in "[a-z0-9 ]{0,12}", other in "[a-z0-9 ]{0,12}") {
        prop_assume!(arg != other);
        let p = Project::new(&format!("[tasks.t]\nkind = \"command\"\nrun = [\"echo\", {arg:?}]\n"));
        let before = keys(p.root());
        p.set_pipeline(&format!("[tasks.t]\nkind = \"command\"\nrun = [\"echo\", {other:?}]\n"));
        prop_assert_ne!(keys(p.root()), before);
    }

    #[test]
    fn reordering_the_toml_does_not_change_keys(
        n in 1usize..5,
        task_order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
        spaces in "[ ]{0,3}",
    ) {
        // Task i runs `echo i`, reads `src`, depends on every earlier task.
        let task = |i: usize, field_order: u64| {
            let mut fields = [
                "kind = \"command\"".to_string(),
                format!("run = [\"echo\",{spaces}\"{i}\"]"),
                "inputs = [\"src\"]".to_string(),
                format!("deps = [{}]", (0..i).map(|d| format!("\"t{d}\"")).collect::<Vec<_>>().join(", ")),
            ];
            let len = fields.len();
            fields.rotate_left((field_order as usize) % len);
            if field_order % 2 == 1 { fields.swap(0, len - 1); }
            format!("[tasks.t{i}]\n{}\n", fields.join("\n"))
        };
        let in_order: String = (0..n).map(|i| task(i, 0)).collect::<Vec<_>>().join("\n");
        let mut order: Vec<usize> = (0..n).collect();
        order.rotate_left((task_order as usize) % n);
        if task_order % 3 == 0 { order.reverse(); }
        let shuffled: String = order.iter().map(|&i| task(i, task_order >> (i * 4))).collect::<Vec<_>>().join("\n# comment\n");
        let p = Project::new(&in_order);
        p.write("src/f", "x");
        let a = keys(p.root());
        p.set_pipeline(&shuffled);
        prop_assert_eq!(keys(p.root()), a);
    }
}

#[test]
fn dependency_key_change_propagates_transitively() {
    let p = Project::new(
        "[tasks.a]\nkind = \"command\"\ninputs = [\"src\"]\nrun = [\"true\"]\n\
         [tasks.b]\nkind = \"command\"\ndeps = [\"a\"]\nrun = [\"true\"]\n\
         [tasks.c]\nkind = \"command\"\ndeps = [\"b\"]\nrun = [\"true\"]\n\
         [tasks.other]\nkind = \"command\"\nrun = [\"true\"]\n",
    );
    p.write("src/f", "1");
    let before = keys(p.root());
    p.write("src/f", "2");
    let after = keys(p.root());
    for t in ["a", "b", "c"] {
        assert_ne!(before[t], after[t], "`{t}` must change");
    }
    assert_eq!(before["other"], after["other"]);
}

#[test]
fn excluded_files_are_not_inputs() {
    let p = Project::new(
        "[tasks.t]\nkind = \"command\"\ninputs = [\"src\", \"!src/skip/**\", \"!**/*.md\"]\nrun = [\"true\"]\n",
    );
    p.write("src/a.rs", "a");
    p.write("src/skip/b.rs", "b");
    p.write("src/deep/README.md", "r");
    let expansion = expand(p.root(), &["src", "!src/skip/**", "!**/*.md"], 2).unwrap();
    assert_eq!(expansion.paths(), ["src/a.rs"]);
    assert!(expansion.empty.is_empty());
    let before = keys(p.root());
    p.write("src/skip/b.rs", "changed");
    p.write("src/deep/README.md", "changed");
    assert_eq!(keys(p.root()), before);
}

/// Write a stat cache claiming `digest` for `rel` with its current stat, recorded by a run
/// whose stamp (the filesystem clock before it stat'ed anything) was `stamp`.
fn forge_cache(root: &Path, rel: &str, digest: &str, stamp: i64) -> std::path::PathBuf {
    let m = std::fs::symlink_metadata(root.join(rel)).unwrap();
    let path = root.join("stat-cache");
    let mut cache = StatCache::new(stamp);
    let sha: [u8; 32] = hex::decode(digest).unwrap().try_into().unwrap();
    cache.insert(rel, &Stat::of(&m), sha);
    cache.save(&path).unwrap();
    path
}

const BOGUS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// sha256("hello")
const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
/// Far after any file this test writes, as the stamp of a later run.
const LATER: i64 = i64::MAX;

/// When the file last changed (the later of mtime and ctime), in the stat cache's unit.
fn changed_at(path: &Path) -> i64 {
    let s = Stat::of(&std::fs::symlink_metadata(path).unwrap());
    s.mtime.max(s.ctime)
}

#[test]
fn a_digest_read_in_the_same_tick_as_the_file_changed_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "hello").unwrap();
    let files = vec!["f".to_string()];
    // The run's stamp is the file's own mtime (it changed in the tick the walk started): its
    // content may change again, same size and times, after it was read. The bogus digest
    // stands for that stale read; it must not be recorded, however much later the cache is
    // used.
    let stamp = changed_at(&dir.path().join("f"));
    let cache_path = forge_cache(dir.path(), "f", BOGUS, stamp);
    let mut cache = StatCache::load(&cache_path, LATER);
    assert_eq!(
        digest_files(dir.path(), &files, &mut cache, 2).unwrap()["f"],
        HELLO
    );

    // Control: recorded by a run that started after the change, the entry is trusted (so the
    // rule above is what protected us, not a cache miss).
    let cache_path = forge_cache(dir.path(), "f", BOGUS, stamp + 1);
    let mut cache = StatCache::load(&cache_path, LATER);
    assert_eq!(
        digest_files(dir.path(), &files, &mut cache, 2).unwrap()["f"],
        BOGUS
    );
}

#[test]
fn rewrite_with_same_size_and_mtime_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "hello").unwrap();
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    let files = vec!["f".to_string()];
    let cache_path = dir.path().join("cache");
    // A run that started well after the write: the digest is recorded.
    let stamp = changed_at(&f) + 5_000_000_000;
    let mut cache = StatCache::load(&cache_path, stamp);
    assert_eq!(
        digest_files(dir.path(), &files, &mut cache, 2).unwrap()["f"],
        HELLO
    );
    cache.save(&cache_path).unwrap();
    let forged = forge_cache(dir.path(), "f", BOGUS, stamp);
    let mut cache = StatCache::load(&forged, LATER);
    assert_eq!(
        digest_files(dir.path(), &files, &mut cache, 2).unwrap()["f"],
        BOGUS,
        "served from cache"
    );

    // Same size, mtime set back: only ctime (and content) differ.
    std::fs::write(&f, "jello").unwrap();
    File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let mut cache = StatCache::load(&forged, LATER);
    let d = digest_files(dir.path(), &files, &mut cache, 2).unwrap();
    assert!(
        d["f"] != HELLO && d["f"] != BOGUS,
        "stale digest after a same-size same-mtime rewrite"
    );
}

#[test]
fn corrupt_stat_cache_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "hello").unwrap();
    // An old text cache, then a valid cache claiming a bogus digest with one bit flipped.
    std::fs::write(
        dir.path().join("cache"),
        "xtask-stat-cache 1\nf\tnot-a-number\n",
    )
    .unwrap();
    let mut cache = StatCache::load(&dir.path().join("cache"), LATER);
    assert_eq!(
        digest_files(dir.path(), &["f".to_string()], &mut cache, 2).unwrap()["f"],
        HELLO
    );
    let forged = forge_cache(dir.path(), "f", BOGUS, LATER);
    let mut bytes = std::fs::read(&forged).unwrap();
    // A bit of the stored digest (the last 32 bytes are the checksum): parseable, but wrong.
    let k = bytes.len() - 40;
    bytes[k] ^= 1;
    std::fs::write(&forged, &bytes).unwrap();
    let mut cache = StatCache::load(&forged, LATER);
    assert_eq!(
        digest_files(dir.path(), &["f".to_string()], &mut cache, 2).unwrap()["f"],
        HELLO,
        "a damaged cache must not be trusted"
    );
}

#[test]
fn executable_bit_is_part_of_the_digest() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "hello").unwrap();
    let mut cache = StatCache::new(LATER);
    let files = vec!["f".to_string()];
    assert_eq!(
        digest_files(dir.path(), &files, &mut cache, 1).unwrap()["f"],
        HELLO
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        digest_files(dir.path(), &files, &mut cache, 1).unwrap()["f"],
        format!("{HELLO}+x")
    );
}
