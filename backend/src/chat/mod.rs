//! The chat assistant: an AI provider with tools when configured, else a built-in interpreter.

pub mod interpreter;
pub mod provider;
pub mod tools;

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::{Limits, LlmConfig};
use crate::db::conversations::Message;
use provider::{Provider, ProviderError};
use tools::{Action, Outcome, ToolLimits};

/// Most stored messages sent to the provider as history with each new message.
pub const HISTORY_LIMIT: i64 = 20;
/// Most provider rounds (requests) per user message.
pub const MAX_ROUNDS: usize = 5;
/// Most tool calls executed per user message.
pub const MAX_TOOL_CALLS: usize = 10;
/// Longest accepted user message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Longest assistant reply kept (and stored), in characters; a longer one is cut.
pub const MAX_REPLY_CHARS: usize = 4000;

/// The reply to one user message.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Text for the user.
    pub text: String,
    /// Every tool call made, in order.
    pub actions: Vec<Action>,
}

/// Answers chat messages.
#[derive(Clone)]
pub struct Assistant {
    provider: Option<Provider>,
    limits: ToolLimits,
    /// Longest a whole turn with the provider may take (`CHAT_TIMEOUT_SECONDS`).
    turn_timeout: std::time::Duration,
}

const SYSTEM_PROMPT: &str = "You are the assistant of a todo app. You manage the user's tasks \
only through the provided tools: add_task, list_tasks, complete_task, update_task, delete_task. \
Tasks are identified by integer ids, shown to the user as #id. When the user refers to a task \
by name, call list_tasks first to find its id. Never invent ids. After acting, answer in one or \
two short sentences saying what you did.";

impl Assistant {
    /// Uses the provider in `llm` when given, else the interpreter.
    pub fn new(llm: Option<&LlmConfig>, limits: &Limits) -> anyhow::Result<Self> {
        Ok(Assistant {
            provider: llm.map(Provider::new).transpose()?,
            limits: ToolLimits::from_limits(limits),
            turn_timeout: limits.chat_timeout,
        })
    }

    /// True when an AI provider is configured.
    pub fn has_provider(&self) -> bool {
        self.provider.is_some()
    }

    /// Answers `message` for `user`, given the conversation's recent `history`.
    pub async fn respond(
        &self,
        pool: &PgPool,
        user: Uuid,
        history: &[Message],
        message: &str,
    ) -> Result<Reply, sqlx::Error> {
        match &self.provider {
            None => interpreter::respond(pool, user, &self.limits, message).await,
            Some(p) => {
                let deadline = tokio::time::Instant::now() + self.turn_timeout;
                let mut reply =
                    with_provider(p, pool, user, &self.limits, deadline, history, message).await?;
                reply.text = bounded(reply.text);
                Ok(reply)
            }
        }
    }
}

async fn with_provider(
    provider: &Provider,
    pool: &PgPool,
    user: Uuid,
    limits: &ToolLimits,
    deadline: tokio::time::Instant,
    history: &[Message],
    message: &str,
) -> Result<Reply, sqlx::Error> {
    let mut transcript: Vec<Value> = Vec::with_capacity(history.len() + 2);
    transcript.push(json!({ "role": "system", "content": SYSTEM_PROMPT }));
    transcript.extend(
        history
            .iter()
            .map(|m| json!({ "role": m.role, "content": m.content })),
    );
    transcript.push(json!({ "role": "user", "content": message }));
    let definitions = tools::definitions();
    let mut actions: Vec<Action> = Vec::new();

    for round in 0..MAX_ROUNDS {
        // The turn's deadline bounds every round together (each also has LLM_TIMEOUT_SECONDS).
        let answer =
            tokio::time::timeout_at(deadline, provider.complete(&transcript, &definitions))
                .await
                .unwrap_or(Err(ProviderError::Timeout));
        let turn = match answer {
            Ok(t) => t,
            Err(e) => {
                match &e {
                    ProviderError::Malformed(detail) => {
                        tracing::warn!(round, error = %e, detail = %detail, "chat provider failed")
                    }
                    _ => tracing::warn!(round, error = %e, "chat provider failed"),
                }
                return Ok(Reply {
                    text: failure_text(&e, &actions),
                    actions,
                });
            }
        };
        if turn.tool_calls.is_empty() {
            let text = turn
                .content
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| summarise(&actions, "Done."));
            return Ok(Reply { text, actions });
        }
        transcript.push(turn.as_message());
        for call in &turn.tool_calls {
            let outcome = if actions.len() >= MAX_TOOL_CALLS {
                Outcome::failed(
                    &call.name,
                    Value::Null,
                    "Tool call limit reached for this message.",
                )
            } else {
                let outcome = run_call(pool, user, limits, &call.name, &call.arguments).await?;
                actions.push(outcome.action.clone());
                outcome
            };
            transcript.push(json!({
                "role": "tool",
                "tool_call_id": call.id,
                "content": outcome.result.to_string(),
            }));
        }
    }
    tracing::warn!(
        max_rounds = MAX_ROUNDS,
        "chat tool loop stopped at its bound"
    );
    Ok(Reply {
        text: summarise(
            &actions,
            &format!("I stopped after {MAX_ROUNDS} rounds of tool calls without finishing."),
        ),
        actions,
    })
}

async fn run_call(
    pool: &PgPool,
    user: Uuid,
    limits: &ToolLimits,
    name: &str,
    raw_args: &str,
) -> Result<Outcome, sqlx::Error> {
    let raw = if raw_args.trim().is_empty() {
        "{}"
    } else {
        raw_args
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(args @ Value::Object(_)) => tools::execute(pool, user, limits, name, args).await,
        Ok(_) | Err(_) => {
            tracing::warn!(tool = %name, "assistant sent tool arguments that are not a JSON object");
            Ok(Outcome::failed(
                name,
                Value::String(raw_args.to_owned()),
                format!("Invalid arguments for {name}: they must be a JSON object."),
            ))
        }
    }
}

/// `text` cut to [`MAX_REPLY_CHARS`] characters.
fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_REPLY_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_REPLY_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `lead` followed by what was done, if anything.
fn summarise(actions: &[Action], lead: &str) -> String {
    if actions.is_empty() {
        return lead.to_owned();
    }
    let done: Vec<&str> = actions.iter().map(|a| a.summary.as_str()).collect();
    format!("{lead} {}", done.join(" "))
}

fn failure_text(e: &ProviderError, actions: &[Action]) -> String {
    let lead = format!("Sorry, {e}, so I could not finish. Please try again in a moment.");
    if actions.is_empty() {
        format!("Sorry, {e}, so nothing was changed. Please try again in a moment.")
    } else {
        summarise(actions, &format!("{lead} Already done:"))
    }
}
