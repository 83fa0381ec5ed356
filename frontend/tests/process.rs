//! The `todo-frontend` binary as a real process: configuration errors, SIGTERM, and logs that
//! never contain secrets.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Browser, CSRF_SECRET, probe, stack, unique_email};
use test_support::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_todo-frontend");

/// Kills the child on drop so a failing test leaves no process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn frontend_command(port: u16, backend: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("CSRF_SECRET", CSRF_SECRET)
        .env("PORT", port.to_string())
        .env("BACKEND_URL", backend)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !probe::http_ok(&format!("http://127.0.0.1:{port}/health")) {
        assert!(
            Instant::now() < deadline,
            "todo-frontend did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn output(child: &mut Child) -> String {
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    for (var, value) in [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("BACKEND_URL", "localhost:8000"),
        ("BACKEND_URL", "ftp://user:s3cr3t-pass@backend"),
        ("COOKIE_SECURE", "sometimes"),
        ("LOG_FORMAT", "yaml"),
        ("LOG_LEVEL", "info,[[["),
        ("CSRF_SECRET", ""),
        ("CSRF_SECRET", "s3cr3t-pass-but-short"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env("CSRF_SECRET", CSRF_SECRET)
            .env(var, value)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
        assert!(!stderr.contains("s3cr3t-pass"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Unset altogether: named with the fix.
    let out = Command::new(BIN)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid CSRF_SECRET: is required") && stderr.contains("openssl rand"),
        "{stderr}"
    );
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits_cleanly() {
    // A backend that accepts but never answers keeps a /ready request in flight for 2 s.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = format!("http://{}", silent.local_addr().unwrap());
    let port = free_port();
    let mut proc = Proc(frontend_command(port, &backend).spawn().unwrap());
    wait_healthy(port);

    let in_flight = std::thread::spawn(move || {
        let started = Instant::now();
        let ok = probe::http_ok(&format!("http://127.0.0.1:{port}/ready"));
        (ok, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&proc.0);
    let status = wait_exit(&mut proc.0, Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    let (ok, elapsed) = in_flight.join().unwrap();
    // It got its (503) answer after the timeout instead of a dropped connection.
    assert!(!ok);
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
    let logs = output(&mut proc.0);
    assert!(logs.contains("shutdown signal received"), "{logs}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_carry_request_ids_but_never_passwords_tokens_or_cookies() {
    let Some(stack) = stack(
        "logs_carry_request_ids_but_never_passwords_tokens_or_cookies",
        false,
    )
    .await
    else {
        return;
    };
    let port = free_port();
    let mut cmd = frontend_command(port, &stack.backend.url);
    cmd.env("LOG_LEVEL", "debug").env("LOG_FORMAT", "json");
    let mut proc = Proc(cmd.spawn().unwrap());
    tokio::task::block_in_place(|| wait_healthy(port));

    let password = "pa55word-that-must-not-leak";
    let browser = Browser::new(&format!("http://127.0.0.1:{port}"));
    let signed_out_token = browser.get("/signup").await.csrf();
    let presession = browser.cookie("todo_presession").unwrap();
    let page = browser.sign_up(&unique_email("logs"), password).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let token = browser.cookie("todo_session").unwrap();
    let csrf = page.csrf();
    let page = browser
        .submit(&page, "/tasks", &[("title", "Log check")])
        .await;
    // A rejected form is logged without the token it carried.
    browser
        .post_raw("/tasks", &[("csrf_token", &signed_out_token)])
        .await;
    browser.submit(&page, "/signout", &[]).await;
    let form = browser.get("/signin").await;
    browser
        .submit(
            &form,
            "/signin",
            &[("email", "nobody@example.com"), ("password", password)],
        )
        .await;

    sigterm(&proc.0);
    tokio::task::block_in_place(|| wait_exit(&mut proc.0, Duration::from_secs(15)));
    let logs = output(&mut proc.0);
    assert!(logs.contains("\"request_id\""), "{logs}");
    assert!(logs.contains("/tasks"), "{logs}");
    assert!(
        logs.contains("rejected a request without a valid CSRF token"),
        "{logs}"
    );
    for secret in [
        password,
        token.as_str(),
        csrf.as_str(),
        signed_out_token.as_str(),
        presession.as_str(),
        CSRF_SECRET,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs:\n{logs}");
    }
    assert!(!logs.to_lowercase().contains("cookie:"), "{logs}");
    // Every line is JSON when LOG_FORMAT=json.
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}
