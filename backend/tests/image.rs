//! The backend image, built as the pipeline builds it (the binary compiled in the builder
//! container, the runtime Dockerfile around it) and run against a `postgres:15-bookworm`
//! container on a private network. Needs Docker; skips without it (fails under `CI=true`).
//! The first build compiles every dependency (several minutes on 2 cores); later runs compile
//! incrementally in the image tests' builder, whose volumes stay.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::docker::{Cleanup, docker_ok};

const IMAGE: &str = "todo-backend:image-test";
const MAX_IMAGE_BYTES: u64 = 100_000_000;

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
    if !test_support::docker_daemon(test) {
        return;
    }

    let took = test_support::docker::build(&test_support::workspace_root(), "backend-image", IMAGE);
    eprintln!("image build took {:.1} s", took.as_secs_f64());

    // Size bound, and no secret baked into the image's configuration.
    test_support::docker::assert_image_size_at_most(IMAGE, MAX_IMAGE_BYTES);
    let config = docker_ok(&["image", "inspect", "-f", "{{json .Config}}", IMAGE]);
    assert!(
        !config.contains("DATABASE_URL") && !config.contains("JWT_SECRET"),
        "{config}"
    );
    assert!(config.contains("\"User\":\"1001:1001\""), "{config}");

    let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let mut cleanup = Cleanup::default();
    let net = format!("todo-backend-test-{id}");
    cleanup.network(&net);

    // Secrets go through env files, never command-line arguments.
    let dir = tempfile::tempdir().unwrap();
    let db_password = format!("pw-{id}");
    let jwt_secret = format!("jwt-secret-for-image-test-{id}-0123456789");
    let be_env = dir.path().join("backend.env");
    std::fs::write(
        &be_env,
        format!(
            "DATABASE_URL=postgres://postgres:{db_password}@db:5432/postgres\nJWT_SECRET={jwt_secret}\nLOG_FORMAT=json\n"
        ),
    )
    .unwrap();

    cleanup.postgres(&format!("todo-backend-test-pg-{id}"), &net, &db_password);
    let be = format!("todo-backend-test-app-{id}");
    let be_env = be_env.to_str().unwrap();
    let options = [
        "--network",
        &net,
        "-p",
        "127.0.0.1::8000",
        "--env-file",
        be_env,
    ];
    cleanup.run(&be, &options, IMAGE);

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
    let logs = test_support::docker::logs(&be);
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
