//! Checks of the Helm chart in `k8s/todo-app/`, with the real `helm` and real validators:
//! `helm lint --strict` and `helm template` for every `ci/*-values.yaml` case,
//! `kubernetes-validate --strict` for Kubernetes 1.30 through the newest it ships, `checkov`
//! with zero failed checks, golden snapshots, and bad values that must fail naming their key.
//!
//! The validators come from PyPI into a virtualenv at `<repo>/target/chart-tools-venv`, created
//! on the first run and reused afterwards. Golden snapshots live in `k8s/golden/`; accept a
//! deliberate change with `UPDATE_GOLDEN=1 cargo test -p xtask --test integration chart::`.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::pyvenv::{self, run_ok};
use test_support::{require, runs, workspace_root};

/// Release and namespace every case is rendered with (the pipeline's defaults).
const RELEASE: &str = "todo-app";
const NAMESPACE: &str = "todo-app";
/// Oldest Kubernetes minor the chart must validate against.
const OLDEST_KUBE: (u64, u64) = (1, 30);
/// Pinned validator versions; changing them rebuilds the virtualenv.
const PINS: &[&str] = &["kubernetes-validate==1.37.0", "checkov==3.3.30"];
/// Tags the bad-value tests start from, so that only the key under test is wrong.
const GOOD_TAGS: &[&str] = &[
    "backend.image.tag=3f9c2a1b7d4e",
    "frontend.image.tag=8e1d0c5a9b2f",
];

// ---------------------------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------------------------

fn chart_dir() -> PathBuf {
    workspace_root().join("k8s/todo-app")
}

fn golden_dir() -> PathBuf {
    workspace_root().join("k8s/golden")
}

/// A line on the real stderr, past libtest's capture, so skips and the validators' summaries
/// show in every `cargo test` log.
fn announce(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn helm_present(test: &str) -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    let present = *PRESENT.get_or_init(|| runs("helm", &["version"]));
    require(present, test, "helm", "../shared/ci/provision.sh helm")
}

/// Python validators from PyPI, in a virtualenv shared by every run.
struct Tools {
    python: PathBuf,
}

impl Tools {
    fn python(&self) -> Command {
        let mut cmd = Command::new(&self.python);
        // No writes of .pyc files into the shared venv from concurrent runs.
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    }
}

/// The validators, or None (after a SKIP line) when python3 is absent outside CI.
fn tools(test: &str) -> Option<&'static Tools> {
    if !helm_present(test) {
        return None;
    }
    static PYTHON: OnceLock<bool> = OnceLock::new();
    let python = *PYTHON.get_or_init(|| runs("python3", &["--version"]));
    if !require(
        python,
        test,
        "python3 (with venv)",
        "apt-get install python3 python3-venv",
    ) {
        return None;
    }
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    Some(TOOLS.get_or_init(|| {
        let venv = workspace_root().join("target/chart-tools-venv");
        let installed = pyvenv::ensure(&venv, PINS, &[])
            .unwrap_or_else(|e| panic!("chart tools virtualenv {}: {e}", venv.display()));
        if let Some(took) = installed {
            announce(&format!(
                "chart tools: installed {} into {} in {:.1} s",
                PINS.join(", "),
                venv.display(),
                took.as_secs_f64()
            ));
        }
        Tools {
            python: venv.join("bin/python"),
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// Cases and rendering
// ---------------------------------------------------------------------------------------------

/// One `ci/<name>-values.yaml`, layered on `values-<name>.yaml` when the chart has one (so the
/// `dev` case checks `values-dev.yaml` itself).
struct Case {
    name: String,
    value_files: Vec<PathBuf>,
}

fn cases() -> Vec<Case> {
    let chart = chart_dir();
    let mut cases: Vec<Case> = fs::read_dir(chart.join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix("-values.yaml")?
                .to_owned();
            let base = chart.join(format!("values-{name}.yaml"));
            let mut value_files = Vec::new();
            if base.exists() {
                value_files.push(base);
            }
            value_files.push(path);
            Some(Case { name, value_files })
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for required in [
        "default",
        "dev",
        "external-database",
        "clusterip",
        "chart-secret",
    ] {
        assert!(
            names.contains(required),
            "k8s/todo-app/ci/{required}-values.yaml is missing"
        );
    }
    cases
}

fn helm(args: &[&str], extra: &[String]) -> Output {
    Command::new("helm")
        .args(args)
        .args(extra)
        .current_dir(workspace_root())
        .output()
        .expect("helm runs")
}

fn value_args(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| ["-f".to_owned(), f.display().to_string()])
        .collect()
}

/// `helm template` of the chart with these arguments: Ok(manifests) or Err(helm's stderr).
fn render(extra: &[String]) -> Result<String, String> {
    let chart = chart_dir().display().to_string();
    let out = helm(
        &["template", RELEASE, &chart, "--namespace", NAMESPACE],
        extra,
    );
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn set_args(sets: &[&str]) -> Vec<String> {
    sets.iter()
        .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
        .collect()
}

/// Every case rendered once per test binary.
fn rendered_cases() -> &'static Vec<(String, String)> {
    static RENDERED: OnceLock<Vec<(String, String)>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        cases()
            .into_iter()
            .map(|case| {
                let yaml = render(&value_args(&case.value_files))
                    .unwrap_or_else(|e| panic!("helm template, case {}: {e}", case.name));
                (case.name, yaml)
            })
            .collect()
    })
}

fn rendered(name: &str) -> &'static str {
    rendered_cases()
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, y)| y.as_str())
        .unwrap()
}

/// Manifests as JSON (through the venv's PyYAML), for checks of what the chart means.
fn objects(tools: &Tools, yaml: &str) -> Vec<Value> {
    let mut child = tools
        .python()
        .args([
            "-c",
            "import sys, json, yaml; \
             print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the rendered chart is not valid YAML");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn get<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(objs, kind, name).unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn kinds(objs: &[Value]) -> BTreeSet<String> {
    objs.iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// Writes each case's manifests to `<dir>/<case>.yaml`.
fn write_cases(dir: &Path) -> Vec<PathBuf> {
    rendered_cases()
        .iter()
        .map(|(name, yaml)| {
            let path = dir.join(format!("{name}.yaml"));
            fs::write(&path, yaml).unwrap();
            path
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The matrix: lint, Kubernetes schemas, checkov, golden snapshots
// ---------------------------------------------------------------------------------------------

#[test]
fn helm_lint_strict_passes_for_every_case() {
    if !helm_present("helm_lint_strict_passes_for_every_case") {
        return;
    }
    let chart = chart_dir().display().to_string();
    for case in cases() {
        let out = helm(
            &["lint", "--strict", &chart, "--namespace", NAMESPACE],
            &value_args(&case.value_files),
        );
        assert!(
            out.status.success(),
            "helm lint --strict, case {}:\n{}{}",
            case.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Kubernetes versions kubernetes-validate ships, from 1.30 on, discovered from the package.
fn kube_versions(tools: &Tools) -> Vec<String> {
    let out = run_ok(
        tools.python().args([
            "-c",
            "import kubernetes_validate.utils as u; print('\\n'.join(sorted(set(u.all_versions()))))",
        ]),
        "listing kubernetes-validate's versions",
    )
    .unwrap();
    let parse = |v: &str| -> (u64, u64, u64) {
        let mut it = v.split('.').map(|p| p.parse::<u64>().unwrap());
        (
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap_or(0),
        )
    };
    let mut versions: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .filter(|v| {
            let (major, minor, _) = parse(v);
            (major, minor) >= OLDEST_KUBE
        })
        .map(str::to_owned)
        .collect();
    versions.sort_by_key(|v| parse(v));
    versions
}

#[test]
fn manifests_pass_kubernetes_validate_strict_from_1_30_to_newest() {
    let Some(tools) = tools("manifests_pass_kubernetes_validate_strict_from_1_30_to_newest") else {
        return;
    };
    let versions = kube_versions(tools);
    assert_eq!(
        versions.first().map(String::as_str),
        Some("1.30.0"),
        "kubernetes-validate must ship Kubernetes 1.30's schema: {versions:?}"
    );
    // Each distinct manifest once (most are the same in every case), in a file named after the
    // first case that renders it; one process per Kubernetes version, in parallel.
    let dir = tempfile::tempdir().unwrap();
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for (name, yaml) in rendered_cases() {
        let fresh: Vec<&str> = documents(yaml).filter(|d| seen.insert(*d)).collect();
        if !fresh.is_empty() {
            let path = dir.path().join(format!("{name}.yaml"));
            fs::write(&path, fresh.join("\n---\n")).unwrap();
            files.push(path);
        }
    }
    let children: Vec<(String, std::process::Child)> = versions
        .iter()
        .map(|v| {
            let child = tools
                .python()
                .args(["-m", "kubernetes_validate", "--strict", "--quiet", "-k", v])
                .args(&files)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (v.clone(), child)
        })
        .collect();
    let failures: Vec<String> = children
        .into_iter()
        .filter_map(|(v, child)| {
            let out = child.wait_with_output().unwrap();
            (!out.status.success()).then(|| {
                format!(
                    "Kubernetes {v}:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "kubernetes-validate --strict failed:\n{}",
        failures.join("\n")
    );
    announce(&format!(
        "kubernetes-validate --strict: {} distinct manifests of {} cases valid for Kubernetes {}",
        seen.len(),
        rendered_cases().len(),
        versions.join(", ")
    ));
}

/// The YAML documents of a `helm template` output, without helm's `# Source:` comments.
fn documents(yaml: &str) -> impl Iterator<Item = &str> {
    yaml.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .map(|d| {
            d.split_once('\n')
                .filter(|(first, _)| first.starts_with("# Source:"))
                .map_or(d, |(_, rest)| rest)
        })
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

#[test]
fn kubernetes_validate_rejects_an_unknown_field() {
    // Proves the validation above can fail: a misspelled field must not pass --strict.
    let Some(tools) = tools("kubernetes_validate_rejects_an_unknown_field") else {
        return;
    };
    let broken = rendered("default").replacen("revisionHistoryLimit:", "revisionHistoryLimt:", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    fs::write(&file, broken).unwrap();
    let out = tools
        .python()
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--quiet",
            "-k",
            "1.30.0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "kubernetes-validate --strict accepted an unknown field"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("revisionHistoryLimt"));
}

#[test]
fn checkov_reports_zero_failed_checks() {
    let Some(tools) = tools("checkov_reports_zero_failed_checks") else {
        return;
    };
    // Not tempdir()'s ".tmp…" name: checkov ignores hidden directories.
    let dir = tempfile::Builder::new()
        .prefix("chart-checkov-")
        .tempdir()
        .unwrap();
    write_cases(dir.path());
    let out = tools
        .python()
        // Without --quiet the report lists the skipped checks with their reasons.
        .args([
            "-m",
            "checkov.main",
            "--framework",
            "kubernetes",
            "--skip-download",
        ])
        .args(["--output", "json", "--directory"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["file_path"]))
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failed checks:\n{}",
        failed.join("\n")
    );
    assert_eq!(summary["failed"], 0, "checkov summary: {summary}");
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 0,
        "checkov ran no check: {summary}"
    );
    assert_eq!(
        summary["parsing_errors"], 0,
        "checkov could not parse a manifest: {summary}"
    );
    let resources = rendered_cases()
        .iter()
        .map(|(_, y)| y.matches("\nkind: ").count())
        .sum::<usize>();
    // checkov counts each container as a resource of its own besides the manifests.
    let seen = summary["resource_count"].as_u64().unwrap_or(0) as usize;
    assert!(
        seen >= resources,
        "checkov saw {seen} resources, fewer than the {resources} manifests: {summary}"
    );
    // Every skip carries its reason (the annotation's text after '=').
    let mut skipped_ids = BTreeSet::new();
    for check in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let reason = check["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.len() > 20,
            "checkov skip {} has no real justification: {reason:?}",
            check["check_id"]
        );
        skipped_ids.insert(check["check_id"].as_str().unwrap().to_owned());
    }
    assert!(out.status.success(), "checkov exited {}", out.status);
    announce(&format!(
        "checkov: passed {}, failed {}, skipped {} (skipped check ids: {})",
        summary["passed"],
        summary["failed"],
        summary["skipped"],
        skipped_ids.into_iter().collect::<Vec<_>>().join(", ")
    ));
}

#[test]
fn rendered_manifests_match_golden_snapshots() {
    if !helm_present("rendered_manifests_match_golden_snapshots") {
        return;
    }
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let golden = golden_dir();
    let how = "if the change is intended, accept it with: UPDATE_GOLDEN=1 cargo test -p xtask --test integration chart::";
    let mut problems = Vec::new();
    let mut expected_files = BTreeSet::new();
    for (name, yaml) in rendered_cases() {
        let path = golden.join(format!("{name}.yaml"));
        expected_files.insert(path.clone());
        if update {
            fs::create_dir_all(&golden).unwrap();
            fs::write(&path, yaml).unwrap();
            println!("updated {}", path.display());
            continue;
        }
        match fs::read_to_string(&path) {
            Err(_) => problems.push(format!("{}: no snapshot", path.display())),
            Ok(want) if want != *yaml => {
                let line = want
                    .lines()
                    .zip(yaml.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| want.lines().count().min(yaml.lines().count()));
                problems.push(format!(
                    "{}: differs from the rendered case `{name}` first at line {}:\n  snapshot: {}\n  rendered: {}",
                    path.display(),
                    line + 1,
                    want.lines().nth(line).unwrap_or("<end of file>"),
                    yaml.lines().nth(line).unwrap_or("<end of file>"),
                ));
            }
            Ok(_) => {}
        }
    }
    for entry in fs::read_dir(&golden).into_iter().flatten() {
        let path = entry.unwrap().path();
        if !expected_files.contains(&path) {
            if update {
                fs::remove_file(&path).unwrap();
            } else {
                problems.push(format!("{}: snapshot of no ci case", path.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "golden snapshots out of date:\n{}\n{how}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Bad values fail at install with a message naming the key
// ---------------------------------------------------------------------------------------------

/// Renders the default case with extra `--set`s, expecting helm to refuse; returns its error.
fn refused(test: &str, sets: &[&str]) -> Option<String> {
    if !helm_present(test) {
        return None;
    }
    let mut args = set_args(GOOD_TAGS);
    args.extend(set_args(sets));
    match render(&args) {
        Ok(_) => panic!("{test}: helm rendered {sets:?} without an error"),
        Err(e) => Some(e),
    }
}

fn assert_names(err: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            err.contains(needle),
            "helm's error does not mention {needle:?}:\n{err}"
        );
    }
}

#[test]
fn schema_closes_every_object() {
    // additionalProperties: false at every level, so any misspelled key fails; the only open
    // maps are label maps, whose keys are data.
    fn walk(schema: &Value, at: &str, open: &mut Vec<String>) {
        if schema["type"] == "object" {
            match &schema["additionalProperties"] {
                Value::Bool(false) => {}
                Value::Object(_) if at.ends_with("Labels") => {}
                other => open.push(format!("{at}: additionalProperties {other}")),
            }
            let props = schema["properties"].as_object();
            for (key, sub) in props.into_iter().flatten() {
                walk(sub, &format!("{at}.{key}"), open);
            }
            let required: BTreeSet<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for key in props.into_iter().flatten().map(|(k, _)| k.as_str()) {
                if !required.contains(key) {
                    open.push(format!(
                        "{at}.{key}: not required (values.yaml must declare it)"
                    ));
                }
            }
        }
    }
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(chart_dir().join("values.schema.json")).unwrap())
            .unwrap();
    let mut open = Vec::new();
    walk(&schema, "", &mut open);
    assert!(
        open.is_empty(),
        "values.schema.json leaves objects open:\n{}",
        open.join("\n")
    );
    let replicas = &schema["properties"]["backend"]["properties"]["replicas"];
    assert_eq!(replicas["minimum"], 0);
}

#[test]
fn good_values_render() {
    // The bad-value tests below differ from this by one key only, so they fail for that key.
    if !helm_present("good_values_render") {
        return;
    }
    render(&set_args(GOOD_TAGS)).unwrap();
}

#[test]
fn negative_replicas_are_refused_naming_the_key() {
    for key in ["backend.replicas", "frontend.replicas"] {
        let Some(err) = refused(
            "negative_replicas_are_refused_naming_the_key",
            &[&format!("{key}=-1")],
        ) else {
            return;
        };
        assert_names(&err, &[&format!("/{}", key.replace('.', "/")), "minimum"]);
    }
}

#[test]
fn missing_image_tag_is_refused_naming_the_key() {
    for key in [
        "backend.image.tag",
        "frontend.image.tag",
        "postgres.image.tag",
    ] {
        let Some(err) = refused(
            "missing_image_tag_is_refused_naming_the_key",
            &[&format!("{key}=")],
        ) else {
            return;
        };
        assert_names(
            &err,
            &[&format!("{key} is required"), &format!("--set {key}=")],
        );
    }
    // No tag given at all (only the chart's defaults) fails the same way.
    let chart = chart_dir().display().to_string();
    let out = helm(
        &["template", RELEASE, &chart],
        &set_args(&["frontend.image.tag=8e1d0c5a9b2f"]),
    );
    assert!(!out.status.success());
    assert_names(
        &String::from_utf8_lossy(&out.stderr),
        &["backend.image.tag is required"],
    );
}

#[test]
fn latest_image_tag_is_refused_naming_the_key() {
    for key in [
        "backend.image.tag",
        "frontend.image.tag",
        "postgres.image.tag",
    ] {
        for latest in ["latest", "LATEST"] {
            let Some(err) = refused(
                "latest_image_tag_is_refused_naming_the_key",
                &[&format!("{key}={latest}")],
            ) else {
                return;
            };
            assert_names(&err, &[&format!("{key} must not be `latest`")]);
        }
    }
}

#[test]
fn registry_images_render_by_digest_with_the_pull_secret() {
    if !helm_present("registry_images_render_by_digest_with_the_pull_secret") {
        return;
    }
    let yaml = rendered("registry");
    for (repo, digest) in [
        (
            "127.0.0.1:5000/ci/todo-backend",
            "sha256:0b5c8f1e2d3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
        ),
        (
            "127.0.0.1:5000/ci/todo-frontend",
            "sha256:1c6d9a2f3e4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
        ),
    ] {
        assert!(
            yaml.contains(&format!("image: \"{repo}@{digest}\"")),
            "{repo} not deployed by digest:\n{yaml}"
        );
    }
    // Every pod template (backend, frontend, postgres) pulls with the Secret.
    assert_eq!(
        yaml.matches("imagePullSecrets:\n        - name: todo-app-registry")
            .count(),
        3,
        "{yaml}"
    );
    assert!(!rendered("default").contains("imagePullSecrets"));
}

#[test]
fn malformed_image_digest_is_refused_naming_the_key() {
    let Some(err) = refused(
        "malformed_image_digest_is_refused_naming_the_key",
        &["backend.image.digest=sha256:abc"],
    ) else {
        return;
    };
    assert_names(&err, &["/backend/image/digest", "does not match pattern"]);
}

#[test]
fn malformed_image_tag_is_refused_naming_the_key() {
    let Some(err) = refused(
        "malformed_image_tag_is_refused_naming_the_key",
        &["backend.image.tag=a:b"],
    ) else {
        return;
    };
    assert_names(&err, &["/backend/image/tag", "does not match pattern"]);
}

#[test]
fn unknown_keys_are_refused_naming_the_key() {
    for (set, at, key) in [
        ("replica=2", "at ''", "'replica'"),
        ("backend.replica=2", "at '/backend'", "'replica'"),
        (
            "frontend.service.nodeport=30001",
            "at '/frontend/service'",
            "'nodeport'",
        ),
        (
            "database.external.URL=x",
            "at '/database/external'",
            "'URL'",
        ),
    ] {
        let Some(err) = refused("unknown_keys_are_refused_naming_the_key", &[set]) else {
            return;
        };
        assert_names(&err, &[at, "additional properties", key]);
    }
}

#[test]
fn malformed_external_database_url_is_refused_naming_the_key() {
    for url in [
        "http://db.example.com:5432/todo",
        "db.example.com:5432/todo",
        "postgres://",
        "postgres://db example.com/todo",
        "postgres://db.example.com:port/todo",
    ] {
        let Some(err) = refused(
            "malformed_external_database_url_is_refused_naming_the_key",
            &[
                "database.external.enabled=true",
                &format!("database.external.url={url}"),
            ],
        ) else {
            return;
        };
        assert_names(&err, &["/database/external/url"]);
    }
    // Well-formed URLs, with and without credentials, are accepted.
    for url in [
        "postgres://db.example.com:6543/todo?sslmode=require",
        "postgresql://user:p%40ss@10.0.0.5/todo",
        "postgres://db.example.com",
    ] {
        let mut args = set_args(GOOD_TAGS);
        args.extend(set_args(&[
            "database.external.enabled=true",
            &format!("database.external.url={url}"),
        ]));
        render(&args).unwrap_or_else(|e| panic!("{url} refused: {e}"));
    }
}

#[test]
fn external_database_without_url_is_refused_naming_the_key() {
    let Some(err) = refused(
        "external_database_without_url_is_refused_naming_the_key",
        &["database.external.enabled=true"],
    ) else {
        return;
    };
    assert_names(
        &err,
        &["database.external.url is required when database.external.enabled is true"],
    );
}

#[test]
fn chart_managed_secret_without_values_is_refused_naming_the_key() {
    let test = "chart_managed_secret_without_values_is_refused_naming_the_key";
    let Some(err) = refused(
        test,
        &[
            "secret.create=true",
            "secret.jwtSecret=0123456789abcdef0123456789abcdef",
        ],
    ) else {
        return;
    };
    assert_names(&err, &["secret.postgresPassword is required"]);
    let err = refused(test, &["secret.create=true", "secret.postgresPassword=pw"]).unwrap();
    assert_names(&err, &["secret.jwtSecret is required"]);
    let err = refused(
        test,
        &[
            "secret.create=true",
            "secret.postgresPassword=pw",
            "secret.jwtSecret=short",
        ],
    )
    .unwrap();
    assert_names(&err, &["/secret/jwtSecret"]);
    // The frontend's CSRF key is required like the JWT key, and as long.
    let err = refused(
        test,
        &[
            "secret.create=true",
            "secret.postgresPassword=pw",
            "secret.jwtSecret=0123456789abcdef0123456789abcdef",
        ],
    )
    .unwrap();
    assert_names(
        &err,
        &[
            "secret.csrfSecret is required",
            "--set-file secret.csrfSecret=",
        ],
    );
    let err = refused(
        test,
        &[
            "secret.create=true",
            "secret.postgresPassword=pw",
            "secret.jwtSecret=0123456789abcdef0123456789abcdef",
            "secret.csrfSecret=short",
        ],
    )
    .unwrap();
    assert_names(&err, &["/secret/csrfSecret"]);
}

#[test]
fn llm_settings_without_their_partner_are_refused_naming_the_key() {
    // The backend exits when LLM_BASE_URL, LLM_MODEL and LLM_API_KEY do not go together, so the
    // chart refuses such values before a pod crash-loops.
    // LLM_BASE_URL is a key of the Secret, so the chart can check the pairing only when it creates
    // the Secret (the pipeline checks it before deploying otherwise).
    let test = "llm_settings_without_their_partner_are_refused_naming_the_key";
    let managed = [
        "secret.create=true",
        "secret.postgresPassword=pw",
        "secret.jwtSecret=0123456789abcdef0123456789abcdef",
        "secret.csrfSecret=0123456789abcdef0123456789abcdef",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        managed.iter().chain(extra).copied().collect()
    };
    let Some(err) = refused(
        test,
        &with(&["secret.llmBaseUrl=https://api.openai.com/v1"]),
    ) else {
        return;
    };
    assert_names(
        &err,
        &["backend.llm.model is required when secret.llmBaseUrl is set"],
    );
    let err = refused(test, &with(&["backend.llm.model=gpt-4o-mini"])).unwrap();
    assert_names(
        &err,
        &["secret.llmBaseUrl is required when backend.llm.model is set"],
    );
    let err = refused(test, &with(&["secret.llmApiKey=k"])).unwrap();
    assert_names(
        &err,
        &["secret.llmBaseUrl is required when secret.llmApiKey is set"],
    );
    let err = refused(
        test,
        &with(&[
            "secret.llmBaseUrl=ftp://llm.example/v1",
            "backend.llm.model=m",
        ]),
    )
    .unwrap();
    assert_names(&err, &["/secret/llmBaseUrl"]);
    // The old plain value is gone: a values file that still sets it fails naming it.
    let err = refused(test, &["backend.llm.baseUrl=https://api.openai.com/v1"]).unwrap();
    assert_names(
        &err,
        &["at '/backend/llm'", "additional properties", "'baseUrl'"],
    );
    // A URL with credentials is accepted in the Secret (and appears nowhere else).
    let mut args = set_args(GOOD_TAGS);
    args.extend(set_args(&with(&[
        "secret.llmBaseUrl=https://user:pw-marker@llm.example:8443/v1",
        "backend.llm.model=m",
    ])));
    let yaml = render(&args).unwrap();
    assert_eq!(yaml.matches("pw-marker").count(), 1, "{yaml}");
}

// ---------------------------------------------------------------------------------------------
// What the manifests mean
// ---------------------------------------------------------------------------------------------

fn pod_spec(obj: &Value) -> &Value {
    &obj["spec"]["template"]["spec"]
}

fn container<'a>(obj: &'a Value, name: &str) -> &'a Value {
    pod_spec(obj)["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn env_names(c: &Value) -> BTreeMap<String, Value> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

fn config_keys(objs: &[Value], name: &str) -> BTreeSet<String> {
    get(objs, "ConfigMap", name)["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The backend ConfigMap's keys whatever the values (the LLM ones come only with a provider).
const BACKEND_CONFIG_KEYS: [&str; 10] = [
    "PORT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "TOKEN_TTL_SECONDS",
    "LOGIN_RATE_PER_IP",
    "LOGIN_RATE_PER_ACCOUNT",
    "REGISTER_RATE_PER_IP",
    "CHAT_RATE_PER_USER",
    "TRUSTED_PROXIES",
    "SHUTDOWN_DRAIN_SECONDS",
];

#[test]
fn pods_read_exactly_the_settings_and_secret_keys_the_apps_read() {
    let Some(tools) = tools("pods_read_exactly_the_settings_and_secret_keys_the_apps_read") else {
        return;
    };
    let objs = objects(tools, rendered("default"));
    assert_eq!(
        config_keys(&objs, "todo-app-backend"),
        set(BACKEND_CONFIG_KEYS)
    );
    assert_eq!(
        config_keys(&objs, "todo-app-frontend"),
        set([
            "PORT",
            "BACKEND_URL",
            "COOKIE_SECURE",
            "LOG_LEVEL",
            "LOG_FORMAT",
            "SHUTDOWN_DRAIN_SECONDS"
        ])
    );
    let frontend_config = &get(&objs, "ConfigMap", "todo-app-frontend")["data"];
    assert_eq!(
        frontend_config["BACKEND_URL"],
        "http://todo-app-backend:8000"
    );
    // Each drain ends 8 s before its pod's grace period (5 s preStop pause, 3 s to spare).
    for (service, grace) in [("backend", 30), ("frontend", 30)] {
        let data = &get(&objs, "ConfigMap", &format!("todo-app-{service}"))["data"];
        let pod = pod_spec(get(&objs, "Deployment", &format!("todo-app-{service}")));
        assert_eq!(pod["terminationGracePeriodSeconds"], grace, "{service}");
        assert_eq!(
            data["SHUTDOWN_DRAIN_SECONDS"],
            (grace - 8).to_string(),
            "{service}"
        );
    }
    let backend_svc = get(&objs, "Service", "todo-app-backend");
    assert_eq!(backend_svc["spec"]["type"], "ClusterIP");
    assert_eq!(backend_svc["spec"]["ports"][0]["port"], 8000);

    for (deploy, config) in [
        ("todo-app-backend", "todo-app-backend"),
        ("todo-app-frontend", "todo-app-frontend"),
    ] {
        let c = &pod_spec(get(&objs, "Deployment", deploy))["containers"][0];
        assert_eq!(
            c["envFrom"][0]["configMapRef"]["name"], config,
            "{deploy} reads its ConfigMap"
        );
    }
    let backend = container(get(&objs, "Deployment", "todo-app-backend"), "backend");
    let env = env_names(backend);
    assert_eq!(
        env.keys().cloned().collect::<BTreeSet<_>>(),
        set(["DATABASE_URL", "JWT_SECRET", "LLM_API_KEY", "LLM_BASE_URL"])
    );
    for (name, e) in &env {
        let r = &e["valueFrom"]["secretKeyRef"];
        assert_eq!(r["name"], "todo-app-secrets");
        assert_eq!(r["key"], name.as_str());
        assert_eq!(
            r["optional"] == true,
            name.starts_with("LLM_"),
            "only the LLM keys are optional"
        );
    }
    // The frontend reads exactly its CSRF key from the Secret (required: it refuses to start
    // without one).
    let frontend = container(get(&objs, "Deployment", "todo-app-frontend"), "frontend");
    let env = env_names(frontend);
    assert_eq!(
        env.keys().cloned().collect::<BTreeSet<_>>(),
        set(["CSRF_SECRET"])
    );
    let r = &env["CSRF_SECRET"]["valueFrom"]["secretKeyRef"];
    assert_eq!(r["name"], "todo-app-secrets");
    assert_eq!(r["key"], "CSRF_SECRET");
    assert!(r["optional"].is_null());

    let pg = container(get(&objs, "StatefulSet", "todo-app-postgres"), "postgres");
    let pg_env = env_names(pg);
    assert_eq!(
        pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"],
        "POSTGRES_PASSWORD"
    );
    assert_eq!(pg_env["PGDATA"]["value"], "/var/lib/postgresql/data/pgdata");
    assert!(
        pg_env
            .keys()
            .all(|k| k != "JWT_SECRET" && k != "DATABASE_URL")
    );

    // The LLM settings appear only when configured, and never the base URL, which is a key of
    // the Secret (it may carry credentials).
    let ext = objects(tools, rendered("external-database"));
    let mut with_llm = set(BACKEND_CONFIG_KEYS);
    with_llm.extend(set(["LLM_MODEL", "LLM_TIMEOUT_SECONDS"]));
    assert_eq!(config_keys(&ext, "todo-app-backend"), with_llm);
    for (case, yaml) in rendered_cases() {
        for o in objects(tools, yaml)
            .iter()
            .filter(|o| o["kind"] == "ConfigMap")
        {
            assert!(
                o["data"].get("LLM_BASE_URL").is_none(),
                "{case}: LLM_BASE_URL in ConfigMap {}",
                o["metadata"]["name"]
            );
        }
    }
    // With the chart's own Secret, the URL's credentials are in the Secret and nowhere else.
    let chart_secret = rendered("chart-secret");
    assert_eq!(chart_secret.matches("fixture-pass").count(), 1);
    let cs = objects(tools, chart_secret);
    assert!(
        get(&cs, "Secret", "todo-app-secrets")["stringData"]["LLM_BASE_URL"]
            .as_str()
            .unwrap()
            .contains("fixture-pass")
    );
}

#[test]
fn containers_are_locked_down_and_probed() {
    let Some(tools) = tools("containers_are_locked_down_and_probed") else {
        return;
    };
    for (case, yaml) in rendered_cases() {
        let objs = objects(tools, yaml);
        let sa = get(&objs, "ServiceAccount", "todo-app");
        assert_eq!(sa["automountServiceAccountToken"], false);
        for w in objs
            .iter()
            .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
        {
            let name = w["metadata"]["name"].as_str().unwrap();
            let spec = pod_spec(w);
            let uid = if w["kind"] == "StatefulSet" {
                999
            } else {
                1001
            };
            assert_eq!(spec["serviceAccountName"], "todo-app", "{case} {name}");
            assert_eq!(spec["automountServiceAccountToken"], false, "{case} {name}");
            assert_eq!(
                spec["securityContext"]["runAsNonRoot"], true,
                "{case} {name}"
            );
            assert_eq!(spec["securityContext"]["fsGroup"], uid, "{case} {name}");
            for c in spec["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["runAsUser"], uid, "{case} {name}");
                assert_eq!(sc["runAsGroup"], uid, "{case} {name}");
                assert_eq!(sc["runAsNonRoot"], true, "{case} {name}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{case} {name}");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{case} {name}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{case} {name}"
                );
                assert_eq!(
                    sc["seccompProfile"]["type"], "RuntimeDefault",
                    "{case} {name}"
                );
                assert_eq!(c["imagePullPolicy"], "IfNotPresent", "{case} {name}");
                let image = c["image"].as_str().unwrap();
                assert!(
                    image.contains(':') && !image.ends_with(":latest"),
                    "{case} {name}: {image}"
                );
                let mounts: BTreeSet<&str> = c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["mountPath"].as_str().unwrap())
                    .collect();
                assert!(mounts.contains("/tmp"), "{case} {name}: /tmp is writable");
                for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                    assert!(c[probe].is_object(), "{case} {name}: {probe}");
                }
                assert!(
                    c["resources"]["requests"]["cpu"].is_string()
                        && c["resources"]["limits"]["memory"].is_string()
                );
            }
            if w["kind"] == "Deployment" {
                let c = &spec["containers"][0];
                assert_eq!(
                    c["startupProbe"]["httpGet"]["path"], "/health",
                    "{case} {name}"
                );
                assert_eq!(
                    c["livenessProbe"]["httpGet"]["path"], "/health",
                    "{case} {name}"
                );
                assert_eq!(
                    c["readinessProbe"]["httpGet"]["path"], "/ready",
                    "{case} {name}"
                );
                let ru = &w["spec"]["strategy"]["rollingUpdate"];
                assert_eq!(ru["maxUnavailable"], 0, "{case} {name}");
            } else {
                let c = &spec["containers"][0];
                let mounts: BTreeSet<&str> = c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["mountPath"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    mounts,
                    BTreeSet::from(["/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"])
                );
                assert_eq!(c["image"], "postgres:15-bookworm");
            }
        }
    }
    // Resources as the issue sets them.
    let objs = objects(tools, rendered("default"));
    let res = |d: &str| {
        container(get(&objs, "Deployment", &format!("todo-app-{d}")), d)["resources"].clone()
    };
    assert_eq!(
        res("frontend"),
        serde_json::json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}})
    );
    assert_eq!(
        res("backend"),
        serde_json::json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}})
    );
}

#[test]
fn cases_deploy_the_right_objects() {
    let Some(tools) = tools("cases_deploy_the_right_objects") else {
        return;
    };
    let default = objects(tools, rendered("default"));
    let k = kinds(&default);
    for want in [
        "StatefulSet/todo-app-postgres",
        "Service/todo-app-postgres",
        "PodDisruptionBudget/todo-app-backend",
        "PodDisruptionBudget/todo-app-frontend",
        "NetworkPolicy/todo-app-default-deny",
    ] {
        assert!(k.contains(want), "default case lacks {want}: {k:?}");
    }
    assert!(
        !k.contains("Secret/todo-app-secrets"),
        "the pipeline creates the Secret by default"
    );
    assert_eq!(
        get(&default, "Deployment", "todo-app-backend")["spec"]["replicas"],
        2
    );
    assert_eq!(
        get(&default, "Deployment", "todo-app-frontend")["spec"]["replicas"],
        2
    );
    let svc = get(&default, "Service", "todo-app-frontend");
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30000);
    let pvc = &get(&default, "StatefulSet", "todo-app-postgres")["spec"]["volumeClaimTemplates"][0];
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1Gi");

    let dev = objects(tools, rendered("dev"));
    assert!(
        !kinds(&dev)
            .iter()
            .any(|k| k.starts_with("PodDisruptionBudget/")),
        "no PDB for one replica"
    );
    assert_eq!(
        get(&dev, "Deployment", "todo-app-backend")["spec"]["replicas"],
        1
    );
    assert_eq!(
        get(&dev, "ConfigMap", "todo-app-backend")["data"]["LOG_LEVEL"],
        "debug"
    );

    let ext = kinds(&objects(tools, rendered("external-database")));
    assert!(
        !ext.iter().any(|k| k.contains("postgres")),
        "external database leaves no in-cluster one: {ext:?}"
    );

    let cip = objects(tools, rendered("clusterip"));
    let svc = get(&cip, "Service", "todo-app-frontend");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert!(svc["spec"]["ports"][0]["nodePort"].is_null());

    let cs = objects(tools, rendered("chart-secret"));
    let secret = get(&cs, "Secret", "todo-app-secrets");
    assert_eq!(
        secret["stringData"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>(),
        set([
            "DATABASE_URL",
            "JWT_SECRET",
            "CSRF_SECRET",
            "POSTGRES_PASSWORD",
            "LLM_BASE_URL",
            "LLM_API_KEY"
        ])
    );
    // The password is percent-encoded into the URL, which points at the in-cluster Service.
    assert_eq!(
        secret["stringData"]["DATABASE_URL"],
        "postgres://todo:test%20fixture%20p%40ss%2Fword%2B1@todo-app-postgres:5432/todo"
    );
}

fn pod_annotations(tools: &Tools, deployment: &str, sets: &[&str]) -> Value {
    let mut args = set_args(GOOD_TAGS);
    args.extend(set_args(sets));
    let objs = objects(tools, &render(&args).unwrap());
    get(&objs, "Deployment", deployment)["spec"]["template"]["metadata"]["annotations"].clone()
}

fn backend_pod_annotations(tools: &Tools, sets: &[&str]) -> Value {
    pod_annotations(tools, "todo-app-backend", sets)
}

#[test]
fn changed_config_or_secret_rolls_the_pods() {
    let Some(tools) = tools("changed_config_or_secret_rolls_the_pods") else {
        return;
    };
    let base = backend_pod_annotations(tools, &["secretChecksum=aaaa"]);
    assert_eq!(base["checksum/secret"], "aaaa");
    let rotated = backend_pod_annotations(tools, &["secretChecksum=bbbb"]);
    assert_eq!(rotated["checksum/secret"], "bbbb");
    assert_eq!(base["checksum/config"], rotated["checksum/config"]);
    let reconfigured =
        backend_pod_annotations(tools, &["secretChecksum=aaaa", "backend.logLevel=debug"]);
    assert_ne!(base["checksum/config"], reconfigured["checksum/config"]);
    // A chart-managed Secret is hashed by the chart itself.
    let managed = |deployment: &str, jwt: &str, csrf: &str| {
        pod_annotations(
            tools,
            deployment,
            &[
                "secret.create=true",
                "secret.postgresPassword=pw",
                &format!("secret.jwtSecret={jwt}"),
                &format!("secret.csrfSecret={csrf}"),
            ],
        )["checksum/secret"]
            .clone()
    };
    let (jwt, csrf) = (
        "0123456789abcdef0123456789abcdef-a",
        "fedcba9876543210fedcba9876543210-a",
    );
    let a = managed("todo-app-backend", jwt, csrf);
    let b = managed("todo-app-backend", &jwt.replace("-a", "-b"), csrf);
    assert!(a.is_string() && b.is_string());
    assert_ne!(a, b);
    // The frontend reads the Secret too (CSRF_SECRET): a rotated value rolls it as well.
    let fe = pod_annotations(tools, "todo-app-frontend", &["secretChecksum=aaaa"]);
    assert_eq!(fe["checksum/secret"], "aaaa");
    let fe_a = managed("todo-app-frontend", jwt, csrf);
    let fe_b = managed("todo-app-frontend", jwt, &csrf.replace("-a", "-b"));
    assert!(fe_a.is_string());
    assert_ne!(fe_a, fe_b);
}

#[test]
fn serving_tls_turns_secure_cookies_on() {
    let Some(tools) = tools("serving_tls_turns_secure_cookies_on") else {
        return;
    };
    let cookie_secure = |objs: &[Value]| {
        get(objs, "ConfigMap", "todo-app-frontend")["data"]["COOKIE_SECURE"].clone()
    };
    // Plain HTTP (the NodePort) in every case but the one with a certificate.
    for (case, yaml) in rendered_cases() {
        let objs = objects(tools, yaml);
        let want = if case == "ingress-tls" {
            "true"
        } else {
            "false"
        };
        assert_eq!(cookie_secure(&objs), want, "{case}");
        assert_eq!(
            find(&objs, "Ingress", "todo-app-frontend").is_some(),
            case == "ingress-tls",
            "{case}"
        );
    }
    let objs = objects(tools, rendered("ingress-tls"));
    let ingress = &get(&objs, "Ingress", "todo-app-frontend")["spec"];
    assert_eq!(ingress["ingressClassName"], "nginx");
    assert_eq!(
        ingress["tls"],
        serde_json::json!([{"hosts": ["todo.example.test"], "secretName": "todo-example-test-tls"}])
    );
    let rule = &ingress["rules"][0];
    assert_eq!(rule["host"], "todo.example.test");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"],
        serde_json::json!({"name": "todo-app-frontend", "port": {"name": "http"}})
    );
    // An Ingress without a certificate serves plain HTTP: cookies stay as they are.
    let render_sets = |sets: &[&str]| {
        let mut args = set_args(GOOD_TAGS);
        args.extend(set_args(sets));
        objects(tools, &render(&args).unwrap())
    };
    let plain = render_sets(&["ingress.enabled=true", "ingress.host=todo.example.test"]);
    assert_eq!(cookie_secure(&plain), "false");
    assert!(get(&plain, "Ingress", "todo-app-frontend")["spec"]["tls"].is_null());
    // TLS ended in front of the chart: set by hand.
    let by_hand = render_sets(&["frontend.cookieSecure=true"]);
    assert_eq!(cookie_secure(&by_hand), "true");

    let err = refused(
        "serving_tls_turns_secure_cookies_on",
        &["ingress.enabled=true"],
    )
    .unwrap();
    assert_names(
        &err,
        &["ingress.host is required when ingress.enabled is true"],
    );
    let err = refused(
        "serving_tls_turns_secure_cookies_on",
        &["ingress.tls.secretName=cert"],
    )
    .unwrap();
    assert_names(&err, &["ingress.tls.secretName needs ingress.enabled=true"]);
}

fn policy<'a>(objs: &'a [Value], name: &str) -> &'a Value {
    &get(objs, "NetworkPolicy", name)["spec"]
}

#[test]
fn network_policies_allow_only_the_declared_paths() {
    let Some(tools) = tools("network_policies_allow_only_the_declared_paths") else {
        return;
    };
    let objs = objects(tools, rendered("default"));
    let deny = policy(&objs, "todo-app-default-deny");
    assert_eq!(
        deny["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert!(deny["ingress"].is_null() && deny["egress"].is_null());
    assert_eq!(
        deny["podSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "todo-app"
    );

    let dns = &policy(&objs, "todo-app-allow-dns")["egress"][0];
    assert_eq!(dns["ports"].as_array().unwrap().len(), 2);
    assert_eq!(
        dns["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "kube-system"
    );

    let component =
        |v: &Value| v["podSelector"]["matchLabels"]["app.kubernetes.io/component"].clone();
    let fe = policy(&objs, "todo-app-frontend");
    assert!(
        fe["ingress"][0]["from"].is_null(),
        "anyone reaches the frontend"
    );
    assert_eq!(fe["ingress"][0]["ports"][0]["port"], 3000);
    assert_eq!(fe["egress"].as_array().unwrap().len(), 1);
    assert_eq!(component(&fe["egress"][0]["to"][0]), "backend");
    assert_eq!(fe["egress"][0]["ports"][0]["port"], 8000);

    let be = policy(&objs, "todo-app-backend");
    assert_eq!(be["ingress"].as_array().unwrap().len(), 1);
    assert_eq!(component(&be["ingress"][0]["from"][0]), "frontend");
    assert_eq!(
        be["egress"].as_array().unwrap().len(),
        1,
        "no LLM configured: only the database"
    );
    assert_eq!(component(&be["egress"][0]["to"][0]), "database");
    assert_eq!(be["egress"][0]["ports"][0]["port"], 5432);

    let pg = policy(&objs, "todo-app-postgres");
    assert_eq!(component(&pg["ingress"][0]["from"][0]), "backend");
    assert_eq!(pg["egress"], serde_json::json!([]));

    let ext = objects(tools, rendered("external-database"));
    let be = policy(&ext, "todo-app-backend");
    let egress = be["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 2);
    assert_eq!(
        egress[0]["ports"][0]["port"], 6543,
        "the external database's port"
    );
    assert_eq!(egress[0]["to"][0]["ipBlock"]["cidr"], "10.20.0.0/16");
    assert_eq!(
        egress[1]["ports"][0]["port"], 443,
        "the LLM provider over https"
    );
    assert!(find(&ext, "NetworkPolicy", "todo-app-postgres").is_none());

    // The LLM port comes from its URL when explicit.
    let cs = objects(tools, rendered("chart-secret"));
    let egress = policy(&cs, "todo-app-backend")["egress"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(egress.len(), 2);
    assert_eq!(component(&egress[0]["to"][0]), "database");
    assert_eq!(egress[1]["ports"][0]["port"], 11434);
    assert!(egress[1]["to"].is_null());
}

#[test]
fn notes_give_the_url_and_next_commands() {
    if !helm_present("notes_give_the_url_and_next_commands") {
        return;
    }
    let chart = chart_dir().display().to_string();
    // --dry-run=client renders NOTES.txt without a cluster.
    let notes = |case: &str| {
        let file = chart_dir().join(format!("ci/{case}-values.yaml"));
        let out = helm(
            &[
                "install",
                RELEASE,
                &chart,
                "--namespace",
                NAMESPACE,
                "--dry-run=client",
            ],
            &value_args(&[file]),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Only the NOTES section: the manifests above it have comments of their own.
        let stdout = String::from_utf8(out.stdout).unwrap();
        let notes = stdout.split_once("\nNOTES:\n").map(|(_, n)| n.to_owned());
        notes.unwrap_or_else(|| panic!("no NOTES in helm's output:\n{stdout}"))
    };
    let default = notes("default");
    for needle in [
        "minikube service todo-app-frontend --namespace todo-app --url",
        "http://$(minikube ip):30000",
        "cargo xtask status",
        "cargo xtask smoke",
        "POSTGRES_PASSWORD",
    ] {
        assert!(
            default.contains(needle),
            "NOTES lack {needle:?}:\n{default}"
        );
    }
    let cip = notes("clusterip");
    assert!(
        cip.contains(
            "kubectl port-forward --namespace todo-app service/todo-app-frontend 8080:8080"
        ),
        "{cip}"
    );
    assert!(default.contains("CSRF_SECRET (>= 32 bytes)"), "{default}");
    let ext = notes("external-database");
    assert!(
        ext.contains("DATABASE_URL, JWT_SECRET") && !ext.contains("POSTGRES_PASSWORD"),
        "{ext}"
    );
    let tls = notes("ingress-tls");
    assert!(tls.contains("https://todo.example.test/"), "{tls}");
}
