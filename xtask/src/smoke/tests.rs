//! The smoke test's pieces without a live app.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::client::{Client, Response};
use super::flow::Flow;
use super::page::{find_form, parse_forms};
use super::*;

const PAGE: &str = r#"<html><body>
  <form method="post" action="/tasks">
    <input type="hidden" name="csrf_token" value="a&amp;b">
    <input type="text" name="title" value="">
    <textarea name="description">x &lt; y</textarea>
    <input type="checkbox" name="urgent" value="1">
    <button type="submit">Add</button>
  </form>
  <ul>
    <li><span>smoke task 1</span>
      <form method='post' action='/tasks/7/complete'><input type=hidden name=csrf_token value=t1></form>
      <form method="post" action="/tasks/7/delete"><input type="hidden" name="csrf_token" value="t1"></form>
    </li>
    <li><span>other</span>
      <form method="post" action="/tasks/8/delete"></form>
    </li>
  </ul></body></html>"#;

#[test]
fn parses_forms_fields_and_csrf() {
    let forms = parse_forms(PAGE);
    assert_eq!(forms.len(), 4);
    assert_eq!(forms[0].action, "/tasks");
    assert_eq!(forms[0].method, "post");
    assert_eq!(
        forms[0].fields,
        vec![
            ("csrf_token".to_owned(), "a&b".to_owned()),
            ("title".to_owned(), String::new()),
            ("description".to_owned(), "x < y".to_owned()),
        ]
    );
    assert_eq!(forms[1].action, "/tasks/7/complete");
    assert_eq!(
        forms[1].fields,
        vec![("csrf_token".to_owned(), "t1".to_owned())]
    );
}

#[test]
fn task_forms_are_scoped_to_the_tasks_item() {
    let mut flow = Flow::new(Client::new(Duration::from_secs(1)), "http://x");
    flow.title = "smoke task 1".into();
    flow.page = PAGE.into();
    let actions: Vec<String> = flow
        .task_forms("smoke task 1")
        .into_iter()
        .map(|f| f.action)
        .collect();
    assert_eq!(actions, vec!["/tasks/7/complete", "/tasks/7/delete"]);
}

/// The shape of `frontend/templates/tasks.html` after a chat turn: the task in the list,
/// and the chat panel quoting the title in its messages before its own form.
const CHAT_PAGE: &str = r#"<ul class="task-list">
    <li class="task" id="task-9"><form method="post" action="/tasks/9/complete"></form>
      <span class="task-title">smoke-chat-1</span>
      <form method="post" action="/tasks/9/delete"><input type="hidden" name="csrf_token" value="t"></form>
    </li></ul>
  <aside class="card chat"><ol class="messages">
    <li class="msg msg-user">add smoke-chat-1</li>
    <li class="msg msg-assistant">Added #9 “smoke-chat-1”.</li></ol>
    <form method="post" action="/chat" class="chat-form">
      <input type="hidden" name="csrf_token" value="t">
      <input type="hidden" name="status" value="all">
      <input type="text" name="message" maxlength="2000" required autocomplete="off">
    </form></aside>"#;

#[test]
fn chat_form_found_and_chat_quotes_are_not_list_items() {
    let chat = find_form(CHAT_PAGE, |f| {
        f.has_field("message") && f.action.contains("chat")
    })
    .unwrap();
    assert_eq!(chat.action, "/chat");
    assert!(chat.has_field("csrf_token") && chat.has_field("status"));

    let mut flow = Flow::new(Client::new(Duration::from_secs(1)), "http://x");
    flow.page = CHAT_PAGE.into();
    let actions: Vec<String> = flow
        .task_forms("smoke-chat-1")
        .into_iter()
        .map(|f| f.action)
        .collect();
    assert_eq!(actions, vec!["/tasks/9/complete", "/tasks/9/delete"]);
    // Once deleted, only the chat's quotes remain: not listed.
    let start = CHAT_PAGE.find("<ul").unwrap();
    let end = CHAT_PAGE.find("</ul>").unwrap() + 5;
    flow.page = format!("{}{}", &CHAT_PAGE[..start], &CHAT_PAGE[end..]);
    assert!(flow.page.contains("smoke-chat-1"));
    assert!(flow.task_forms("smoke-chat-1").is_empty());
}

#[test]
fn cookie_jar_sets_and_clears() {
    let mut flow = Flow::new(Client::new(Duration::from_secs(1)), "http://x/");
    let resp = |c: &[&str]| Response {
        status: 303,
        location: None,
        set_cookies: c.iter().map(|s| (*s).to_owned()).collect(),
        body: String::new(),
    };
    flow.absorb(&resp(&["session=abc; Path=/; HttpOnly", "csrf=z; Path=/"]));
    assert_eq!(flow.cookies.len(), 2);
    flow.absorb(&resp(&["session=; Path=/; Max-Age=0"]));
    assert_eq!(flow.cookies.keys().collect::<Vec<_>>(), vec!["csrf"]);
    assert_eq!(flow.url("/tasks"), "http://x/tasks");
}

#[test]
fn report_table_and_errors() {
    let mut r = Report::default();
    r.record("a", Instant::now(), Ok(()));
    r.record("b", Instant::now(), Err(anyhow::anyhow!("boom")));
    r.skip("c");
    assert!(!r.passed());
    let t = r.table();
    assert!(t.contains("FAIL") && t.contains("boom") && t.contains("skip"));
    let err = r.into_result().unwrap_err().to_string();
    assert!(err.contains("b: boom") && !err.contains("a:"));
}

#[test]
fn health_check_reports_unreachable_url() {
    let mut client = Client::new(Duration::from_millis(300));
    client.fix = "`cargo xtask status --target docker`".to_owned();
    // Port 9 (discard) on loopback is essentially never served.
    let err = format!(
        "{:#}",
        wait_ok(&client, "http://127.0.0.1:9/health", Instant::now()).unwrap_err()
    );
    assert!(
        err.starts_with("cannot connect to http://127.0.0.1:9/health ("),
        "{err}"
    );
    assert_eq!(err.matches("127.0.0.1:9").count(), 1, "{err}");
    assert!(
        err.ends_with("; fix: `cargo xtask status --target docker`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
