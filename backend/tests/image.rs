//! The backend image, built with the real Docker engine and run against a
//! `postgres:15-bookworm` container on a private network. Needs Docker; skips without it
//! (fails under `CI=true`). The first build is slow (several minutes on 2 cores); later runs
//! reuse the layer cache because the image keeps one stable tag.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::skip_or_fail;

const IMAGE: &str = "todo-backend:image-test";
const MAX_IMAGE_BYTES: u64 = 100_000_000;

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn docker_available() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Removes what the test created, even when it fails; prints container logs on failure.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            if std::thread::panicking() {
                let logs = docker(&["logs", "--tail", "60", c]);
                eprintln!(
                    "--- logs of {c} ---\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<(u16, Value)> {
    let r = http
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn backend_image_runs_as_uid_1001_against_postgres_within_100_mb() {
    let test = "backend_image_runs_as_uid_1001_against_postgres_within_100_mb";
    if !docker_available() {
        skip_or_fail(
            test,
            "docker engine not reachable",
            "docker (../shared/ci/provision.sh docker)",
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();

    let started = Instant::now();
    let build = Command::new("docker")
        .current_dir(root)
        .args(["build", "-q", "-f", "backend/Dockerfile", "-t", IMAGE, "."])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "docker build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    eprintln!("image build took {:.1} s", started.elapsed().as_secs_f64());

    // Size bound, and no secret baked into the image's configuration.
    let size: u64 = docker_ok(&["image", "inspect", "-f", "{{.Size}}", IMAGE])
        .parse()
        .unwrap();
    eprintln!("image size: {:.1} MB", size as f64 / 1e6);
    assert!(
        size <= MAX_IMAGE_BYTES,
        "image is {size} bytes, over {MAX_IMAGE_BYTES}"
    );
    let config = docker_ok(&["image", "inspect", "-f", "{{json .Config}}", IMAGE]);
    assert!(
        !config.contains("DATABASE_URL") && !config.contains("JWT_SECRET"),
        "{config}"
    );
    assert!(config.contains("\"User\":\"1001:1001\""), "{config}");

    let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let mut cleanup = Cleanup::default();
    let net = format!("todo-backend-test-{id}");
    docker_ok(&["network", "create", &net]);
    cleanup.networks.push(net.clone());

    // Secrets go through env files, never command-line arguments.
    let dir = tempfile::tempdir().unwrap();
    let db_password = format!("pw-{id}");
    let jwt_secret = format!("jwt-secret-for-image-test-{id}-0123456789");
    let pg_env = dir.path().join("pg.env");
    std::fs::write(&pg_env, format!("POSTGRES_PASSWORD={db_password}\n")).unwrap();
    let be_env = dir.path().join("backend.env");
    std::fs::write(
        &be_env,
        format!(
            "DATABASE_URL=postgres://postgres:{db_password}@db:5432/postgres\nJWT_SECRET={jwt_secret}\nLOG_FORMAT=json\n"
        ),
    )
    .unwrap();

    let pg = format!("todo-backend-test-pg-{id}");
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &pg,
        "--network",
        &net,
        "--network-alias",
        "db",
        "--env-file",
        pg_env.to_str().unwrap(),
        "postgres:15-bookworm",
    ]);
    cleanup.containers.push(pg.clone());
    let be = format!("todo-backend-test-app-{id}");
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &be,
        "--network",
        &net,
        "-p",
        "127.0.0.1::8000",
        "--env-file",
        be_env.to_str().unwrap(),
        IMAGE,
    ]);
    cleanup.containers.push(be.clone());

    let port = docker_ok(&["port", &be, "8000/tcp"]);
    let addr = port.lines().next().unwrap().to_owned();
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some((200, body)) = get_json(&http, &format!("{base}/ready")).await {
            assert_eq!(body, json!({"status": "ready"}));
            break;
        }
        assert!(Instant::now() < deadline, "/ready never became 200");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        get_json(&http, &format!("{base}/health")).await,
        Some((200, json!({"status": "ok"})))
    );

    let token = support::register_and_login(&http, &base, "image@example.com", "long enough").await;
    let r = http
        .post(format!("{base}/api/tasks"))
        .bearer_auth(&token)
        .json(&json!({"title": "from the image test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    assert_eq!(docker_ok(&["exec", &be, "id", "-u"]), "1001");
    assert_eq!(docker_ok(&["exec", &be, "id", "-g"]), "1001");
    // The server process itself (PID 1), not just an exec'd shell, runs as 1001.
    let status = docker_ok(&["exec", &be, "cat", "/proc/1/status"]);
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "1001"),
        "{uid_line}"
    );

    // `docker stop` sends SIGTERM to PID 1: it must shut down cleanly, not be killed.
    docker_ok(&["stop", "-t", "20", &be]);
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &be]),
        "0"
    );
    let logs = docker(&["logs", &be]);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    for secret in [
        db_password.as_str(),
        jwt_secret.as_str(),
        "long enough",
        token.as_str(),
    ] {
        assert!(!logs.contains(secret), "secret in container logs:\n{logs}");
    }
    assert!(logs.contains("shut down"), "{logs}");
}
