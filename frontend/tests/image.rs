//! The frontend image, built as the pipeline builds it (the binary compiled in the builder
//! container, the runtime Dockerfile around it): size bound, non-root user, probes,
//! and (when the backend image builds too) the whole app in containers against PostgreSQL.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Browser, CSRF_SECRET, unique_email};
use test_support::docker::{Cleanup, assert_image_size_at_most, build, docker, docker_ok};
use test_support::workspace_root;

const MAX_IMAGE_BYTES: u64 = 100 * 1000 * 1000;

fn host_port(container: &str, port: &str) -> String {
    let mapping = docker_ok(&["port", container, port]);
    let first = mapping.lines().next().unwrap();
    first.rsplit(':').next().unwrap().to_owned()
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

async fn wait_for(url: &str, status: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (got, body) = get(url).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {got} (want {status}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn process_uid(container: &str) -> String {
    let status = docker_ok(&["exec", container, "cat", "/proc/1/status"]);
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uid_line.split_whitespace().nth(1).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn frontend_image_is_small_non_root_and_serves_the_app() {
    const TEST: &str = "frontend_image_is_small_non_root_and_serves_the_app";
    if !test_support::docker_daemon(TEST) {
        return;
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let mut cleanup = Cleanup::default();
    let fe_image = format!("todo-frontend-test:{id}");
    cleanup.images.push(fe_image.clone());
    let took =
        tokio::task::block_in_place(|| build(&workspace_root(), "frontend-image", &fe_image));
    eprintln!("frontend image built in {:.1}s", took.as_secs_f64());

    assert_image_size_at_most(&fe_image, MAX_IMAGE_BYTES);
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{.Config.User}}", &fe_image]),
        "1001:1001"
    );
    assert!(
        docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.ExposedPorts}}",
            &fe_image
        ])
        .contains("3000/tcp")
    );

    // Alone, pointed at a backend that does not exist: alive but not ready.
    let lonely = format!("todo-fe-test-lonely-{id}");
    let nowhere = "BACKEND_URL=http://no-such-backend.invalid:8000";
    let csrf_secret = format!("CSRF_SECRET={CSRF_SECRET}");
    cleanup.run(
        &lonely,
        &["-p", "127.0.0.1::3000", "-e", nowhere, "-e", &csrf_secret],
        &fe_image,
    );
    let base = format!("http://127.0.0.1:{}", host_port(&lonely, "3000/tcp"));
    wait_for(&format!("{base}/health"), 200, Duration::from_secs(30)).await;
    let body = wait_for(&format!("{base}/ready"), 503, Duration::from_secs(10)).await;
    assert!(body.contains("not_ready"), "{body}");
    assert_eq!(process_uid(&lonely), "1001");
    let page = wait_for(&format!("{base}/signin"), 200, Duration::from_secs(5)).await;
    assert!(page.contains("Welcome back"));
    // docker stop sends SIGTERM: a clean exit, well before the kill timeout.
    let stopping = Instant::now();
    docker_ok(&["stop", "-t", "20", &lonely]);
    assert!(stopping.elapsed() < Duration::from_secs(15));
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &lonely]),
        "0"
    );

    // Bad configuration: exit code 2 and a line naming the variable.
    let bad = format!("todo-fe-test-bad-{id}");
    cleanup.containers.push(bad.clone());
    // `docker run` without -d passes the container's exit code through.
    let out = docker(&[
        "run",
        "--name",
        &bad,
        "-e",
        &csrf_secret,
        "-e",
        "PORT=abc",
        &fe_image,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid PORT"), "{stderr}");

    // The whole app in containers, when the backend image is part of the tree.
    if !workspace_root().join("backend/Dockerfile").is_file() {
        // Not a missing prerequisite (nothing to install): the frontend part passed.
        eprintln!("{TEST}: backend/Dockerfile absent; checked the frontend alone");
        return;
    }
    let be_image = format!("todo-backend-test-for-frontend:{id}");
    cleanup.images.push(be_image.clone());
    let took = tokio::task::block_in_place(|| build(&workspace_root(), "backend-image", &be_image));
    eprintln!("backend image built in {:.1}s", took.as_secs_f64());

    let net = format!("todo-fe-test-net-{id}");
    cleanup.network(&net);
    let be = format!("todo-fe-test-be-{id}");
    let fe = format!("todo-fe-test-fe-{id}");
    let pg_password = uuid::Uuid::new_v4().simple().to_string();
    tokio::task::block_in_place(|| {
        cleanup.postgres(&format!("todo-fe-test-pg-{id}"), &net, &pg_password);
    });
    let database_url = format!("DATABASE_URL=postgres://postgres:{pg_password}@db:5432/postgres");
    let jwt_secret = format!(
        "JWT_SECRET={}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let alias = ["--network", &net, "--network-alias", "backend"];
    let env = ["-e", &database_url, "-e", &jwt_secret];
    cleanup.run(&be, &[&alias[..], &env].concat(), &be_image);
    let published = ["--network", &net, "-p", "127.0.0.1::3000"];
    let env = ["-e", "BACKEND_URL=http://backend:8000", "-e", &csrf_secret];
    cleanup.run(&fe, &[&published[..], &env].concat(), &fe_image);
    let base = format!("http://127.0.0.1:{}", host_port(&fe, "3000/tcp"));
    wait_for(&format!("{base}/health"), 200, Duration::from_secs(30)).await;
    let ready = wait_for(&format!("{base}/ready"), 200, Duration::from_secs(60)).await;
    assert!(ready.contains("\"ready\""), "{ready}");
    assert_eq!(process_uid(&fe), "1001");
    assert_eq!(process_uid(&be), "1001");

    let browser = Browser::new(&base);
    let page = browser
        .sign_up(&unique_email("image"), "container-password")
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    let page = browser
        .submit(&page, "/tasks", &[("title", "Shipped in a container")])
        .await;
    page.assert_shows("Added “Shipped in a container”.");

    docker_ok(&["stop", &be]);
    let body = wait_for(&format!("{base}/ready"), 503, Duration::from_secs(10)).await;
    assert!(body.contains("backend"), "{body}");
    docker_ok(&["start", &be]);
    wait_for(&format!("{base}/ready"), 200, Duration::from_secs(60)).await;
}
