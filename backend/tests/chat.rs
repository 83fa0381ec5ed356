//! The chat assistant: the built-in interpreter, conversations, and the provider path against
//! `OpenAiDouble`, a local test double of an OpenAI-compatible Chat Completions server.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};
use support::{JWT_SECRET, TestApp};
use test_support::json_strs;
use todo_backend::chat::{HISTORY_LIMIT, MAX_ROUNDS};

// ---------------------------------------------------------------------------------------------
// The test double.

/// One scripted answer of the double.
#[derive(Clone)]
enum Step {
    /// 200 with this Chat Completions body.
    Body(Value),
    /// This status with an error body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Waits, then answers the inner step.
    Slow(Duration, Box<Step>),
}

/// What the double received.
#[derive(Clone, Debug)]
struct Recorded {
    body: Value,
    authorization: Option<String>,
}

#[derive(Clone, Default)]
struct DoubleState {
    script: Arc<Mutex<VecDeque<Step>>>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

/// A scripted stand-in for an OpenAI-compatible server: answers each request with the next
/// scripted step (500 when the script is used up) and records every request.
struct OpenAiDouble {
    base_url: String,
    state: DoubleState,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl OpenAiDouble {
    async fn start(script: Vec<Step>) -> OpenAiDouble {
        let state = DoubleState::default();
        state.script.lock().unwrap().extend(script);
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(answer))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        OpenAiDouble {
            base_url,
            state,
            _stop: tx,
        }
    }

    fn push(&self, steps: Vec<Step>) {
        self.state.script.lock().unwrap().extend(steps);
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.recorded.lock().unwrap().clone()
    }

    fn remaining(&self) -> usize {
        self.state.script.lock().unwrap().len()
    }
}

async fn answer(
    State(state): State<DoubleState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    state.recorded.lock().unwrap().push(Recorded {
        body,
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
    });
    let step = state.script.lock().unwrap().pop_front();
    let mut step = step.unwrap_or(Step::Status(500));
    loop {
        match step {
            Step::Slow(d, inner) => {
                tokio::time::sleep(d).await;
                step = *inner;
            }
            Step::Body(v) => return Json(v).into_response(),
            Step::Status(s) => {
                return (
                    StatusCode::from_u16(s).unwrap(),
                    Json(json!({"error": {"message": "scripted failure"}})),
                )
                    .into_response();
            }
            Step::Garbage => return "<html>definitely not json".into_response(),
        }
    }
}

fn calls(list: &[(&str, &str)]) -> Step {
    let tool_calls: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("call_{i}_{name}"), "type": "function",
                   "function": {"name": name, "arguments": args}})
        })
        .collect();
    Step::Body(json!({
        "id": "chatcmpl-double", "object": "chat.completion", "model": "double-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": null, "tool_calls": tool_calls}}]
    }))
}

fn text(s: &str) -> Step {
    Step::Body(json!({
        "id": "chatcmpl-double", "object": "chat.completion", "model": "double-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": s}}]
    }))
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const API_KEY: &str = "sk-double-key-123";

async fn app_with_provider(test: &str, double: &OpenAiDouble) -> Option<TestApp> {
    app_with_provider_and(test, double, &[]).await
}

async fn app_with_provider_and(
    test: &str,
    double: &OpenAiDouble,
    extra: &[(&str, &str)],
) -> Option<TestApp> {
    let db = support::fresh_database(test).await?;
    let mut pairs = vec![
        ("DATABASE_URL", db.as_str()),
        ("JWT_SECRET", JWT_SECRET),
        ("LLM_BASE_URL", &double.base_url),
        ("LLM_MODEL", "double-model"),
        ("LLM_API_KEY", API_KEY),
        ("LLM_TIMEOUT_SECONDS", "1"),
    ];
    pairs.extend_from_slice(extra);
    Some(TestApp::spawn_with(&pairs).await)
}

async fn chat(app: &TestApp, token: &str, message: &str, conversation: Option<&str>) -> Value {
    let mut body = json!({"message": message});
    if let Some(c) = conversation {
        body["conversation_id"] = json!(c);
    }
    let started = Instant::now();
    let (s, b) = app
        .call(Method::POST, "/api/chat", Some(token), Some(body))
        .await;
    assert_eq!(s, 200, "{message}: {b}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        b["conversation_id"].is_string() && b["reply"].is_string(),
        "{b}"
    );
    b
}

async fn tasks(app: &TestApp, token: &str) -> Vec<Value> {
    let (s, b) = app.call(Method::GET, "/api/tasks", Some(token), None).await;
    assert_eq!(s, 200);
    b.as_array().unwrap().clone()
}

fn reply(b: &Value) -> &str {
    b["reply"].as_str().unwrap()
}

fn action(b: &Value, i: usize) -> &Value {
    &b["actions"][i]
}

macro_rules! skip_none {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Built-in interpreter.

#[tokio::test]
async fn interpreter_handles_every_command() {
    let app = skip_none!(TestApp::spawn("interpreter_handles_every_command").await);
    let t = app.user("interp@example.com").await;

    let b = chat(&app, &t, "add buy milk", None).await;
    let conv = b["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(action(&b, 0)["tool"], "add_task");
    assert_eq!(action(&b, 0)["ok"], true);
    assert!(reply(&b).contains("buy milk"), "{b}");
    let milk = tasks(&app, &t).await[0]["id"].as_i64().unwrap();

    let b = chat(&app, &t, "Add call mom", Some(&conv)).await;
    assert_eq!(action(&b, 0)["arguments"], json!({"title": "call mom"}));
    let mom = tasks(&app, &t).await[0]["id"].as_i64().unwrap();
    let b = chat(&app, &t, "add walk the dog", Some(&conv)).await;
    assert_eq!(action(&b, 0)["ok"], true);
    let dog = tasks(&app, &t).await[0]["id"].as_i64().unwrap();

    // complete by number
    let b = chat(&app, &t, &format!("complete {mom}"), Some(&conv)).await;
    assert_eq!(action(&b, 0)["tool"], "complete_task");
    assert_eq!(action(&b, 0)["ok"], true, "{b}");
    // complete by title
    let b = chat(&app, &t, "complete buy milk", Some(&conv)).await;
    assert_eq!(action(&b, 0)["arguments"], json!({"id": milk}), "{b}");
    assert!(reply(&b).contains("buy milk"));

    let b = chat(&app, &t, "list pending", Some(&conv)).await;
    assert_eq!(action(&b, 0)["tool"], "list_tasks");
    assert!(
        reply(&b).contains("walk the dog") && !reply(&b).contains("buy milk"),
        "{b}"
    );
    let b = chat(&app, &t, "list completed", Some(&conv)).await;
    assert!(
        reply(&b).contains("buy milk") && reply(&b).contains("call mom"),
        "{b}"
    );
    assert!(!reply(&b).contains("walk the dog"));
    let b = chat(&app, &t, "list", Some(&conv)).await;
    for title in ["buy milk", "call mom", "walk the dog"] {
        assert!(reply(&b).contains(title), "{b}");
    }

    let b = chat(&app, &t, &format!("rename {mom} to call dad"), Some(&conv)).await;
    assert_eq!(action(&b, 0)["tool"], "update_task");
    assert_eq!(action(&b, 0)["ok"], true);
    let b = chat(&app, &t, &format!("delete {dog}"), Some(&conv)).await;
    assert_eq!(action(&b, 0)["tool"], "delete_task");
    assert_eq!(action(&b, 0)["ok"], true);

    // The REST view agrees with what the assistant did.
    let now = tasks(&app, &t).await;
    let view: Vec<(String, bool)> = now
        .iter()
        .map(|t| {
            (
                t["title"].as_str().unwrap().to_owned(),
                t["completed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [("call dad".to_owned(), true), ("buy milk".to_owned(), true)]
    );

    // Failures are clear replies, not errors.
    let b = chat(&app, &t, "complete 999999", Some(&conv)).await;
    assert_eq!(action(&b, 0)["ok"], false);
    assert!(reply(&b).contains("999999"), "{b}");
    let b = chat(&app, &t, "delete nothing like this", Some(&conv)).await;
    assert!(b["actions"].as_array().unwrap().is_empty());
    assert!(reply(&b).contains("could not find"), "{b}");
    let b = chat(&app, &t, "rename 2 call mom", Some(&conv)).await;
    assert!(reply(&b).contains("rename 2 to call mom"), "{b}");
    let b = chat(&app, &t, &format!("add {}", "x".repeat(201)), Some(&conv)).await;
    assert_eq!(action(&b, 0)["ok"], false);
    assert!(reply(&b).contains("title"), "{b}");
}

#[tokio::test]
async fn interpreter_answers_anything_else_with_its_help() {
    let app = skip_none!(TestApp::spawn("interpreter_answers_anything_else_with_its_help").await);
    let t = app.user("help@example.com").await;
    for msg in [
        "hello",
        "what can you do?",
        "add",
        "list everything please",
        "complete",
    ] {
        let b = chat(&app, &t, msg, None).await;
        assert!(b["actions"].as_array().unwrap().is_empty(), "{msg}: {b}");
        for cmd in [
            "add buy milk",
            "list pending",
            "complete 3",
            "complete buy milk",
            "delete 2",
            "rename 2 to call mom",
        ] {
            assert!(reply(&b).contains(cmd), "{msg}: help lacks {cmd}: {b}");
        }
    }
    assert!(tasks(&app, &t).await.is_empty());
}

#[tokio::test]
async fn conversations_are_kept_per_user_and_can_be_deleted() {
    let app =
        skip_none!(TestApp::spawn("conversations_are_kept_per_user_and_can_be_deleted").await);
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let b = chat(&app, &alice, "add plan the trip", None).await;
    let conv = b["conversation_id"].as_str().unwrap().to_owned();
    chat(&app, &alice, "list", Some(&conv)).await;

    let (s, list) = app
        .call(Method::GET, "/api/conversations", Some(&alice), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], conv.as_str());
    assert_eq!(list[0]["title"], "add plan the trip");
    assert!(list[0]["created_at"].is_string() && list[0]["updated_at"].is_string());

    let (s, c) = app
        .call(
            Method::GET,
            &format!("/api/conversations/{conv}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let roles = json_strs(&c["messages"], &["role"]);
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(c["messages"][0]["content"], "add plan the trip");
    assert!(
        c["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("plan the trip")
    );
    assert!(c["messages"][0]["created_at"].is_string());

    // Bob sees none of it and cannot use, read or delete it.
    let (_, bobs) = app
        .call(Method::GET, "/api/conversations", Some(&bob), None)
        .await;
    assert_eq!(bobs, json!([]));
    let path = format!("/api/conversations/{conv}");
    assert_eq!(app.call(Method::GET, &path, Some(&bob), None).await.0, 404);
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&bob), None).await.0,
        404
    );
    let (s, e) = app
        .call(
            Method::POST,
            "/api/chat",
            Some(&bob),
            Some(json!({"message": "list", "conversation_id": conv})),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));

    // Validation and auth.
    let (s, e) = app
        .call(
            Method::POST,
            "/api/chat",
            Some(&alice),
            Some(json!({"message": "  "})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("validation_error"))
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/chat",
            Some(&alice),
            Some(json!({"message": "x".repeat(4001)})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/chat",
            Some(&alice),
            Some(json!({"message": "hi", "conversation_id": "nope"})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(
        app.call(
            Method::POST,
            "/api/chat",
            None,
            Some(json!({"message": "hi"}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        app.call(
            Method::GET,
            "/api/conversations/not-a-uuid",
            Some(&alice),
            None
        )
        .await
        .0,
        400
    );

    let (s, _) = app.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, 204);
    assert_eq!(
        app.call(Method::GET, &path, Some(&alice), None).await.0,
        404
    );
    let (_, list) = app
        .call(Method::GET, "/api/conversations", Some(&alice), None)
        .await;
    assert_eq!(list, json!([]));
}

// ---------------------------------------------------------------------------------------------
// AI provider path, against the double.

#[tokio::test]
async fn provider_multi_turn_conversation_runs_tool_calls_and_sends_the_history() {
    let double = OpenAiDouble::start(vec![
        calls(&[
            ("add_task", r#"{"title":"buy milk"}"#),
            (
                "add_task",
                r#"{"title":"walk the dog","description":"before 9"}"#,
            ),
        ]),
        text("I added buy milk and walk the dog."),
    ])
    .await;
    let app = skip_none!(
        app_with_provider(
            "provider_multi_turn_conversation_runs_tool_calls_and_sends_the_history",
            &double
        )
        .await
    );
    let t = app.user("multi@example.com").await;

    let b = chat(&app, &t, "I need to buy milk and walk the dog", None).await;
    assert_eq!(reply(&b), "I added buy milk and walk the dog.");
    assert_eq!(b["actions"].as_array().unwrap().len(), 2);
    assert!(
        b["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["ok"] == true && a["tool"] == "add_task")
    );
    let conv = b["conversation_id"].as_str().unwrap().to_owned();
    let list = tasks(&app, &t).await;
    assert_eq!(list.len(), 2);
    let milk = list.iter().find(|t| t["title"] == "buy milk").unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        list.iter().find(|t| t["title"] == "walk the dog").unwrap()["description"],
        "before 9"
    );

    // Second turn: list, then complete by the id the list returned.
    double.push(vec![
        calls(&[("list_tasks", r#"{"status":"pending"}"#)]),
        calls(&[("complete_task", &format!(r#"{{"id":{milk}}}"#))]),
        text("Done: buy milk is complete."),
    ]);
    let b = chat(&app, &t, "I bought the milk", Some(&conv)).await;
    assert_eq!(reply(&b), "Done: buy milk is complete.");
    let tools = json_strs(&b["actions"], &["tool"]);
    assert_eq!(tools, ["list_tasks", "complete_task"]);
    assert_eq!(b["conversation_id"], conv.as_str());
    let done: Vec<Value> = tasks(&app, &t)
        .await
        .into_iter()
        .filter(|t| t["completed"] == true)
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["id"], milk);

    // What the provider actually received.
    let reqs = double.requests();
    assert_eq!(reqs.len(), 5);
    for r in &reqs {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {API_KEY}").as_str())
        );
        assert_eq!(r.body["model"], "double-model");
        let names = json_strs(&r.body["tools"], &["function", "name"]);
        assert_eq!(
            names,
            [
                "add_task",
                "list_tasks",
                "complete_task",
                "update_task",
                "delete_task"
            ]
        );
    }
    let first = reqs[0].body["messages"].as_array().unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["role"], "system");
    assert_eq!(
        first[1],
        json!({"role": "user", "content": "I need to buy milk and walk the dog"})
    );
    // Round two of turn one carries the assistant's tool calls and one result per call.
    let second = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(second.len(), 5);
    assert_eq!(second[2]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(second[3]["role"], "tool");
    assert_eq!(second[3]["tool_call_id"], "call_0_add_task");
    let result: Value = serde_json::from_str(second[3]["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(second[4]["tool_call_id"], "call_1_add_task");
    // Turn two starts with the stored history: turn one's user message and final reply.
    let third = reqs[2].body["messages"].as_array().unwrap();
    let roles: Vec<&str> = third.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(third[2]["content"], "I added buy milk and walk the dog.");
    assert_eq!(third[3]["content"], "I bought the milk");
    // The list result sent back holds only pending tasks.
    let fourth = reqs[3].body["messages"].as_array().unwrap();
    let listed: Value =
        serde_json::from_str(fourth.last().unwrap()["content"].as_str().unwrap()).unwrap();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn provider_tool_calls_only_touch_the_callers_tasks() {
    let double = OpenAiDouble::start(vec![]).await;
    let app = skip_none!(
        app_with_provider("provider_tool_calls_only_touch_the_callers_tasks", &double).await
    );
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let (_, task) = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&alice),
            Some(json!({"title": "alice only"})),
        )
        .await;
    let id = task["id"].as_i64().unwrap();

    let id_args = format!(r#"{{"id":{id}}}"#);
    double.push(vec![
        calls(&[
            ("list_tasks", "{}"),
            ("complete_task", &id_args),
            ("update_task", &format!(r#"{{"id":{id},"title":"pwned"}}"#)),
            ("delete_task", &id_args),
        ]),
        text("I tried."),
    ]);
    let b = chat(&app, &mallory, "mess with task", None).await;
    let oks: Vec<bool> = b["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [true, false, false, false], "{b}");
    let tool_results: Vec<Value> = double.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| serde_json::from_str(m["content"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        tool_results[0]["tasks"],
        json!([]),
        "list must not show alice's task"
    );
    for r in &tool_results[1..] {
        assert_eq!(r["ok"], false);
        assert!(r["error"].as_str().unwrap().contains("no task"), "{r}");
    }
    let (s, still) = app
        .call(Method::GET, &format!("/api/tasks/{id}"), Some(&alice), None)
        .await;
    assert_eq!(
        (s, &still["title"], &still["completed"]),
        (200, &json!("alice only"), &json!(false))
    );
}

#[tokio::test]
async fn provider_down_gives_a_clear_reply() {
    let Some(db) = support::fresh_database("provider_down_gives_a_clear_reply").await else {
        return;
    };
    let closed = format!("http://127.0.0.1:{}/v1", test_support::free_port());
    let app = TestApp::spawn_with(&[
        ("DATABASE_URL", &db),
        ("JWT_SECRET", JWT_SECRET),
        ("LLM_BASE_URL", &closed),
        ("LLM_MODEL", "m"),
    ])
    .await;
    let t = app.user("down@example.com").await;
    let b = chat(&app, &t, "add buy milk", None).await;
    assert!(reply(&b).contains("could not be reached"), "{b}");
    assert!(reply(&b).contains("nothing was changed"), "{b}");
    assert!(!reply(&b).contains("127.0.0.1"), "no internals: {b}");
    assert!(b["actions"].as_array().unwrap().is_empty());
    // The exchange is still recorded.
    let conv = b["conversation_id"].as_str().unwrap();
    let (_, c) = app
        .call(
            Method::GET,
            &format!("/api/conversations/{conv}"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(c["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn provider_slow_times_out_with_a_clear_reply_keeping_finished_work() {
    let double = OpenAiDouble::start(vec![
        calls(&[("add_task", r#"{"title":"first step"}"#)]),
        Step::Slow(Duration::from_secs(5), Box::new(text("too late"))),
    ])
    .await;
    let app = skip_none!(
        app_with_provider(
            "provider_slow_times_out_with_a_clear_reply_keeping_finished_work",
            &double
        )
        .await
    );
    let t = app.user("slow@example.com").await;
    let started = Instant::now();
    let b = chat(&app, &t, "add first step", None).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "timeout not applied"
    );
    assert!(reply(&b).contains("did not answer in time"), "{b}");
    assert!(
        reply(&b).contains("Added"),
        "mentions what was already done: {b}"
    );
    assert_eq!(b["actions"].as_array().unwrap().len(), 1);
    assert_eq!(tasks(&app, &t).await.len(), 1);
}

#[tokio::test]
async fn provider_errors_and_malformed_answers_give_clear_replies() {
    let double = OpenAiDouble::start(vec![
        Step::Status(500),
        Step::Status(401),
        Step::Garbage,
        Step::Body(json!({"unexpected": true})),
        Step::Body(json!({"choices": [{"message": {"role": "assistant", "tool_calls": "nope"}}]})),
    ])
    .await;
    let app = skip_none!(
        app_with_provider(
            "provider_errors_and_malformed_answers_give_clear_replies",
            &double
        )
        .await
    );
    let t = app.user("errors@example.com").await;
    let expected = [
        "answered with an error (HTTP 500)",
        "answered with an error (HTTP 401)",
        "could not understand",
        "could not understand",
        "could not understand",
    ];
    for want in expected {
        let b = chat(&app, &t, "add something", None).await;
        assert!(reply(&b).contains(want), "want {want}: {b}");
        assert!(!reply(&b).contains(API_KEY));
    }
    assert_eq!(double.remaining(), 0);
    assert!(tasks(&app, &t).await.is_empty());
}

#[tokio::test]
async fn bad_tool_arguments_and_unknown_tools_are_reported_back() {
    let double = OpenAiDouble::start(vec![
        calls(&[
            ("add_task", "{not json"),
            ("add_task", r#"{"title": 5}"#),
            ("complete_task", r#"{"task": 1}"#),
            ("add_task", r#"["buy milk"]"#),
            ("add_task", r#"{"title": ""}"#),
            ("launch_rockets", r#"{"count": 3}"#),
            ("", "{}"),
        ]),
        calls(&[("add_task", r#"{"title":"buy milk"}"#)]),
        text("Sorted it out: added buy milk."),
    ])
    .await;
    let app = skip_none!(
        app_with_provider(
            "bad_tool_arguments_and_unknown_tools_are_reported_back",
            &double
        )
        .await
    );
    let t = app.user("badargs@example.com").await;
    let b = chat(&app, &t, "add buy milk", None).await;
    assert_eq!(reply(&b), "Sorted it out: added buy milk.");
    let actions = b["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 8);
    assert!(actions[..7].iter().all(|a| a["ok"] == false), "{b}");
    assert_eq!(actions[0]["arguments"], "{not json");
    assert!(
        actions[1]["summary"].as_str().unwrap().contains("title"),
        "{b}"
    );
    assert!(
        actions[2]["summary"].as_str().unwrap().contains("id"),
        "{b}"
    );
    assert!(
        actions[5]["summary"]
            .as_str()
            .unwrap()
            .contains("Unknown tool"),
        "{b}"
    );
    assert_eq!(actions[7]["ok"], true);
    assert_eq!(tasks(&app, &t).await.len(), 1);

    // Every failure went back to the model as a tool result it can act on.
    let second = double.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let results: Vec<Value> = second
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| serde_json::from_str(m["content"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(results.len(), 7);
    assert!(
        results
            .iter()
            .all(|r| r["ok"] == false && r["error"].is_string())
    );
    assert!(
        results[5]["error"].as_str().unwrap().contains("add_task"),
        "lists the real tools"
    );
}

#[tokio::test]
async fn the_tool_loop_is_bounded() {
    let endless: Vec<Step> = (0..MAX_ROUNDS + 3)
        .map(|_| calls(&[("list_tasks", "{}")]))
        .collect();
    let double = OpenAiDouble::start(endless).await;
    let app = skip_none!(app_with_provider("the_tool_loop_is_bounded", &double).await);
    let t = app.user("loop@example.com").await;
    let b = chat(&app, &t, "keep going", None).await;
    assert_eq!(double.requests().len(), MAX_ROUNDS);
    assert_eq!(b["actions"].as_array().unwrap().len(), MAX_ROUNDS);
    assert!(reply(&b).contains("stopped"), "{b}");
}

#[tokio::test]
async fn the_history_sent_is_bounded_to_the_latest_messages() {
    let turns = (HISTORY_LIMIT as usize) / 2 + 3;
    let script: Vec<Step> = (0..turns).map(|i| text(&format!("answer {i}"))).collect();
    let double = OpenAiDouble::start(script).await;
    let app = skip_none!(
        app_with_provider(
            "the_history_sent_is_bounded_to_the_latest_messages",
            &double
        )
        .await
    );
    let t = app.user("history@example.com").await;
    let mut conv: Option<String> = None;
    for i in 0..turns {
        let b = chat(&app, &t, &format!("question {i}"), conv.as_deref()).await;
        assert_eq!(reply(&b), format!("answer {i}"));
        conv = Some(b["conversation_id"].as_str().unwrap().to_owned());
    }
    let reqs = double.requests();
    let last = reqs.last().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .clone();
    // system + the latest HISTORY_LIMIT stored messages + the new message
    assert_eq!(last.len(), 1 + HISTORY_LIMIT as usize + 1);
    let oldest_kept = turns - 1 - (HISTORY_LIMIT as usize) / 2;
    assert_eq!(last[1]["content"], format!("question {oldest_kept}"));
    assert_eq!(last[2]["content"], format!("answer {oldest_kept}"));
    assert_eq!(
        last.last().unwrap()["content"],
        format!("question {}", turns - 1)
    );
    // Earlier turns carried everything while under the bound.
    assert_eq!(reqs[1].body["messages"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn provider_answers_are_read_within_a_byte_limit_and_replies_are_bounded() {
    let double = OpenAiDouble::start(vec![text(&"x".repeat(5000)), text(&"y".repeat(1500))]).await;
    let app = skip_none!(
        app_with_provider_and(
            "provider_answers_are_read_within_a_byte_limit_and_replies_are_bounded",
            &double,
            &[("LLM_MAX_RESPONSE_BYTES", "2048")],
        )
        .await
    );
    let t = app.user("big@example.com").await;
    let b = chat(&app, &t, "say a lot", None).await;
    assert!(reply(&b).contains("too large"), "{b}");
    // Under the byte limit: the answer as it is.
    let b = chat(&app, &t, "say less", None).await;
    assert_eq!(reply(&b).len(), 1500);

    // The stored and returned reply is cut at MAX_REPLY_CHARS characters.
    let double = OpenAiDouble::start(vec![text(&"z".repeat(10_000))]).await;
    let app = skip_none!(
        app_with_provider(
            "provider_answers_are_read_within_a_byte_limit_and_replies_are_bounded",
            &double
        )
        .await
    );
    let t = app.user("long@example.com").await;
    let b = chat(&app, &t, "say everything", None).await;
    assert_eq!(
        reply(&b).chars().count(),
        todo_backend::chat::MAX_REPLY_CHARS
    );
    assert!(reply(&b).ends_with('…'));
}

#[tokio::test]
async fn a_whole_chat_turn_is_bounded_by_chat_timeout_seconds() {
    // Each round alone is within LLM_TIMEOUT_SECONDS, all of them together are not.
    let slow_call = |title: &str| {
        Step::Slow(
            Duration::from_millis(700),
            Box::new(calls(&[("add_task", &format!(r#"{{"title":"{title}"}}"#))])),
        )
    };
    let double = OpenAiDouble::start(vec![
        slow_call("one"),
        slow_call("two"),
        slow_call("three"),
        text("done"),
    ])
    .await;
    let app = skip_none!(
        app_with_provider_and(
            "a_whole_chat_turn_is_bounded_by_chat_timeout_seconds",
            &double,
            &[("CHAT_TIMEOUT_SECONDS", "1")],
        )
        .await
    );
    let t = app.user("deadline@example.com").await;
    let b = chat(&app, &t, "add three things", None).await;
    assert!(reply(&b).contains("did not answer in time"), "{b}");
    // What finished before the deadline is kept and reported.
    assert_eq!(b["actions"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(tasks(&app, &t).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_turns_cannot_pass_the_message_cap() {
    let double = OpenAiDouble::start(vec![text("first reply")]).await;
    let app = skip_none!(
        app_with_provider_and(
            "concurrent_turns_cannot_pass_the_message_cap",
            &double,
            &[
                ("MAX_MESSAGES_PER_CONVERSATION", "5"),
                ("CHAT_RATE_PER_USER", "off"),
                ("LLM_TIMEOUT_SECONDS", "30"),
            ],
        )
        .await
    );
    let t = app.user("cap-race@example.com").await;
    let first = chat(&app, &t, "hello", None).await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    // Two of five messages stored: room for one more turn. Every provider answer now takes
    // 3 s, so all the turns below are in flight together, none of their replies stored yet.
    double.push(vec![
        Step::Slow(
            Duration::from_secs(3),
            Box::new(text("slow reply"))
        );
        4
    ]);
    let mut posts = Vec::new();
    for i in 0..4 {
        let req = app
            .http
            .post(app.url("/api/chat"))
            .bearer_auth(&t)
            .json(&json!({"message": format!("race {i}"), "conversation_id": conv}));
        posts.push(tokio::spawn(async move {
            support::read(req.send().await.unwrap()).await
        }));
    }
    let mut statuses = Vec::new();
    for p in posts {
        let (s, b) = p.await.unwrap();
        if s != 200 {
            assert_eq!(
                (s, b["error"]["code"].as_str()),
                (409, Some("limit_reached")),
                "{b}"
            );
        }
        statuses.push(s);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409]);
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/api/conversations/{conv}?limit=100"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["messages"].as_array().unwrap().len(), 4, "{b}");
    // Only the admitted turn reached the provider.
    assert_eq!(double.requests().len(), 2);
}
