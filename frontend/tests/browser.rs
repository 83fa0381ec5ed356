//! One real browser: headless Chromium driven over WebDriver signs up on the real frontend
//! (real backend, real PostgreSQL), adds tasks through the form and the assistant panel, and
//! sees them listed.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use support::{probe, stack, unique_email};
use test_support::{free_port, on_path, skip_or_fail};

const SCREENSHOT: &str = "/tmp/frontend-screenshot.png";

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(binary: &PathBuf) -> Self {
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !probe::http_ok(&format!("{}/status", driver.url)) {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_signs_up_adds_a_task_and_sees_it_listed() {
    const TEST: &str = "chromium_signs_up_adds_a_task_and_sees_it_listed";
    let (Some(chromium), Some(chromedriver)) = (
        on_path(&["chromium", "chromium-browser", "google-chrome"]),
        on_path(&["chromedriver"]),
    ) else {
        skip_or_fail(
            TEST,
            "chromium and chromedriver",
            "../shared/ci/provision.sh chromium",
        );
        return;
    };
    let Some(stack) = stack(TEST, false).await else {
        return;
    };
    let driver = tokio::task::block_in_place(|| Driver::start(&chromedriver));
    let profile = tempfile::tempdir().unwrap();

    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,860",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap();
    let wait = Duration::from_secs(20);

    let result = async {
        let base = &stack.frontend.url;
        client.goto(&format!("{base}/signup")).await?;
        let email = unique_email("browser");
        client
            .find(Locator::Css("input[name=email]"))
            .await?
            .send_keys(&email)
            .await?;
        client
            .find(Locator::Css("input[name=password]"))
            .await?
            .send_keys("browser-password-1")
            .await?;
        client
            .find(Locator::Css("input[name=password_confirm]"))
            .await?
            .send_keys("browser-password-1")
            .await?;
        client
            .find(Locator::Css("form.stack button[type=submit]"))
            .await?
            .click()
            .await?;

        let title = client
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("input[aria-label='New task title']"))
            .await?;
        assert!(client.current_url().await?.path().ends_with("/tasks"));
        for task in [
            "Water the plants",
            "Book dentist appointment",
            "Buy oat milk",
        ] {
            client
                .find(Locator::Css("input[aria-label='New task title']"))
                .await?
                .send_keys(task)
                .await?;
            client
                .find(Locator::Css(".add-row button"))
                .await?
                .click()
                .await?;
            client
                .wait()
                .at_most(wait)
                .for_element(Locator::XPath(&format!(
                    "//span[@class='task-title'][text()='{task}']"
                )))
                .await?;
        }
        drop(title);
        // Complete one so the screenshot shows both states.
        client
            .find(Locator::XPath(
                "//li[.//span[text()='Water the plants']]//button[contains(@class,'check')]",
            ))
            .await?
            .click()
            .await?;
        client
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("li.task.done"))
            .await?;

        // The assistant adds one through the chat panel; the list shows it after the reply.
        client
            .find(Locator::Css("input[name=message]"))
            .await?
            .send_keys("add call mom")
            .await?;
        client
            .find(Locator::Css(".chat-form button"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .at_most(wait)
            .for_element(Locator::XPath(
                "//span[@class='task-title'][text()='call mom']",
            ))
            .await?;
        let replies = client.find_all(Locator::Css(".msg-assistant")).await?;
        assert!(!replies.is_empty());

        let titles: Vec<String> = {
            let mut out = Vec::new();
            for el in client.find_all(Locator::Css(".task-title")).await? {
                out.push(el.text().await?);
            }
            out
        };
        assert_eq!(
            titles,
            [
                "call mom",
                "Buy oat milk",
                "Book dentist appointment",
                "Water the plants"
            ],
            "newest first"
        );
        let png = client.screenshot().await?;
        std::fs::write(SCREENSHOT, png).unwrap();
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    client.close().await.unwrap();
    result.unwrap();
    eprintln!("screenshot written to {SCREENSHOT}");
}
