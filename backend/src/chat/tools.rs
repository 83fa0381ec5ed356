//! The assistant's tools, executed through the data layer and scoped to one user. Both the AI
//! provider's tool calls and the built-in interpreter end up here.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::CappedError;
use crate::db::tasks::{self, StatusFilter, Task};
use crate::validate;

/// Names of the tools, as offered to the provider.
pub const TOOL_NAMES: [&str; 5] = [
    "add_task",
    "list_tasks",
    "complete_task",
    "update_task",
    "delete_task",
];

/// The bounds the tools keep.
#[derive(Debug, Clone, Copy)]
pub struct ToolLimits {
    /// Most tasks `list_tasks` returns (`PAGE_SIZE_DEFAULT`), newest first.
    pub list_max: i64,
    /// Most tasks a user may have (`MAX_TASKS_PER_USER`).
    pub max_tasks: i64,
}

impl ToolLimits {
    /// From the configured limits.
    pub fn from_limits(l: &crate::config::Limits) -> Self {
        ToolLimits {
            list_max: l.page_size_default,
            max_tasks: l.max_tasks_per_user,
        }
    }
}

/// What one tool call did, as reported to the client.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// Tool name as called.
    pub tool: String,
    /// Arguments as received (the raw string when they were not JSON).
    pub arguments: Value,
    /// Whether it succeeded.
    pub ok: bool,
    /// One human sentence.
    pub summary: String,
}

/// An executed call: the client-facing action and the result sent back to the model.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// For the client.
    pub action: Action,
    /// For the model (JSON).
    pub result: Value,
    /// Tasks listed, for replies that show them.
    pub listed: Option<Vec<Task>>,
}

impl Outcome {
    /// A failed call; `error` is safe to show to the user and the model.
    pub fn failed(tool: &str, arguments: Value, error: impl Into<String>) -> Outcome {
        let error = error.into();
        Outcome {
            action: Action {
                tool: tool.to_owned(),
                arguments,
                ok: false,
                summary: error.clone(),
            },
            result: json!({ "ok": false, "error": error }),
            listed: None,
        }
    }

    fn done(tool: &str, arguments: Value, summary: String, result: Value) -> Outcome {
        Outcome {
            action: Action {
                tool: tool.to_owned(),
                arguments,
                ok: true,
                summary,
            },
            result,
            listed: None,
        }
    }
}

/// OpenAI `tools` array describing every tool.
pub fn definitions() -> Value {
    let id =
        json!({ "type": "integer", "description": "The task's id (the number shown as #id)." });
    json!([
        {
            "type": "function",
            "function": {
                "name": "add_task",
                "description": "Create a new task for the user.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "title": { "type": "string", "description": "Short title, 1-200 characters." },
                        "description": { "type": "string", "description": "Optional details, up to 1000 characters." }
                    },
                    "required": ["title"]
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "list_tasks",
                "description": "List the user's tasks, newest first.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "status": { "type": "string", "enum": ["all", "pending", "completed"], "description": "Which tasks; default all." }
                    }
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "complete_task",
                "description": "Mark a task as done (or, with completed=false, as not done).",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "id": id,
                        "completed": { "type": "boolean", "description": "Default true." }
                    },
                    "required": ["id"]
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "update_task",
                "description": "Change a task's title, description or completed state. Omitted fields stay as they are.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "id": id,
                        "title": { "type": "string" },
                        "description": { "type": "string", "description": "Empty string clears it." },
                        "completed": { "type": "boolean" }
                    },
                    "required": ["id"]
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": "delete_task",
                "description": "Delete a task permanently.",
                "parameters": {
                    "type": "object",
                    "properties": { "id": id },
                    "required": ["id"]
                }
            }
        }
    ])
}

/// Accepts `3` and `"3"` (and `"#3"`): models are not always strict about types.
fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Num(i64),
        Text(String),
    }
    match Id::deserialize(d)? {
        Id::Num(n) => Ok(n),
        Id::Text(s) => s
            .trim()
            .trim_start_matches('#')
            .parse()
            .map_err(|_| serde::de::Error::custom("id must be an integer")),
    }
}

#[derive(Deserialize)]
struct AddArgs {
    title: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct ListArgs {
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct CompleteArgs {
    #[serde(deserialize_with = "lenient_id")]
    id: i64,
    #[serde(default)]
    completed: Option<bool>,
}

#[derive(Deserialize)]
struct UpdateArgs {
    #[serde(deserialize_with = "lenient_id")]
    id: i64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    completed: Option<bool>,
}

#[derive(Deserialize)]
struct DeleteArgs {
    #[serde(deserialize_with = "lenient_id")]
    id: i64,
}

fn task_json(t: &Task) -> Value {
    json!({ "id": t.id, "title": t.title, "description": t.description, "completed": t.completed })
}

fn not_found(id: i64) -> String {
    format!("There is no task #{id}.")
}

/// Runs tool `name` for `user`. Bad arguments and unknown tools are failed outcomes, not
/// errors; only database failures are errors.
pub async fn execute(
    pool: &PgPool,
    user: Uuid,
    limits: &ToolLimits,
    name: &str,
    arguments: Value,
) -> Result<Outcome, sqlx::Error> {
    macro_rules! args {
        ($ty:ty) => {
            match serde_path_to_error::deserialize::<_, $ty>(arguments.clone()) {
                Ok(a) => a,
                Err(e) => {
                    return Ok(Outcome::failed(
                        name,
                        arguments,
                        format!("Invalid arguments for {name}: {e}."),
                    ));
                }
            }
        };
    }
    match name {
        "add_task" => {
            let a = args!(AddArgs);
            let title = match validate::title(&a.title) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Outcome::failed(
                        name,
                        arguments,
                        format!("Cannot add: {e}."),
                    ));
                }
            };
            let description = match validate::description(a.description.as_deref()) {
                Ok(d) => d,
                Err(e) => {
                    return Ok(Outcome::failed(
                        name,
                        arguments,
                        format!("Cannot add: {e}."),
                    ));
                }
            };
            let t =
                match tasks::create(pool, user, &title, description.as_deref(), limits.max_tasks)
                    .await
                {
                    Ok(t) => t,
                    Err(CappedError::Db(e)) => return Err(e),
                    Err(CappedError::LimitReached) => {
                        return Ok(Outcome::failed(
                            name,
                            arguments,
                            format!(
                                "Cannot add: {}.",
                                crate::routes::tasks::task_limit_message(limits.max_tasks)
                            ),
                        ));
                    }
                    Err(CappedError::NoOwner) => {
                        return Ok(Outcome::failed(
                            name,
                            arguments,
                            "Cannot add: your account no longer exists.",
                        ));
                    }
                };
            let summary = format!("Added #{} “{}”.", t.id, t.title);
            Ok(Outcome::done(
                name,
                arguments,
                summary,
                json!({ "ok": true, "task": task_json(&t) }),
            ))
        }
        "list_tasks" => {
            let a = args!(ListArgs);
            let filter = match a.status.as_deref().map(str::trim) {
                None | Some("") => StatusFilter::All,
                Some(s) => match StatusFilter::parse(s) {
                    Some(f) => f,
                    None => {
                        return Ok(Outcome::failed(
                            name,
                            arguments,
                            "Invalid arguments for list_tasks: status must be all, pending or completed.",
                        ));
                    }
                },
            };
            // One more than shown, to say when the list is cut.
            let mut list = tasks::list(pool, user, filter, None, limits.list_max + 1).await?;
            let truncated = list.len() > usize::try_from(limits.list_max).unwrap_or(usize::MAX);
            list.truncate(usize::try_from(limits.list_max).unwrap_or(usize::MAX));
            let which = match filter {
                StatusFilter::All => "",
                StatusFilter::Pending => "pending ",
                StatusFilter::Completed => "completed ",
            };
            let summary = if truncated {
                format!("Listed the {} newest {which}tasks.", list.len())
            } else {
                format!(
                    "Listed {} {which}task{}.",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" }
                )
            };
            let result = json!({
                "ok": true,
                "tasks": list.iter().map(task_json).collect::<Vec<_>>(),
                "truncated": truncated,
            });
            let mut out = Outcome::done(name, arguments, summary, result);
            out.listed = Some(list);
            Ok(out)
        }
        "complete_task" => {
            let a = args!(CompleteArgs);
            let completed = a.completed.unwrap_or(true);
            match tasks::set_completed(pool, user, a.id, completed).await? {
                None => Ok(Outcome::failed(name, arguments, not_found(a.id))),
                Some(t) => {
                    let verb = if completed { "Completed" } else { "Reopened" };
                    let summary = format!("{verb} #{} “{}”.", t.id, t.title);
                    Ok(Outcome::done(
                        name,
                        arguments,
                        summary,
                        json!({ "ok": true, "task": task_json(&t) }),
                    ))
                }
            }
        }
        "update_task" => {
            let a = args!(UpdateArgs);
            if a.title.is_none() && a.description.is_none() && a.completed.is_none() {
                return Ok(Outcome::failed(
                    name,
                    arguments,
                    "Invalid arguments for update_task: give at least one of title, description, completed.",
                ));
            }
            let Some(current) = tasks::get(pool, user, a.id).await? else {
                return Ok(Outcome::failed(name, arguments, not_found(a.id)));
            };
            let title = match validate::title(a.title.as_deref().unwrap_or(&current.title)) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Outcome::failed(
                        name,
                        arguments,
                        format!("Cannot update: {e}."),
                    ));
                }
            };
            let description = match &a.description {
                None => current.description.clone(),
                Some(d) => match validate::description(Some(d)) {
                    Ok(d) => d,
                    Err(e) => {
                        return Ok(Outcome::failed(
                            name,
                            arguments,
                            format!("Cannot update: {e}."),
                        ));
                    }
                },
            };
            match tasks::update(
                pool,
                user,
                a.id,
                &title,
                description.as_deref(),
                a.completed,
            )
            .await?
            {
                None => Ok(Outcome::failed(name, arguments, not_found(a.id))),
                Some(t) => {
                    let summary = format!("Updated #{} “{}”.", t.id, t.title);
                    Ok(Outcome::done(
                        name,
                        arguments,
                        summary,
                        json!({ "ok": true, "task": task_json(&t) }),
                    ))
                }
            }
        }
        "delete_task" => {
            let a = args!(DeleteArgs);
            let Some(t) = tasks::get(pool, user, a.id).await? else {
                return Ok(Outcome::failed(name, arguments, not_found(a.id)));
            };
            if tasks::delete(pool, user, a.id).await? {
                let summary = format!("Deleted #{} “{}”.", t.id, t.title);
                Ok(Outcome::done(
                    name,
                    arguments,
                    summary,
                    json!({ "ok": true, "deleted": a.id }),
                ))
            } else {
                Ok(Outcome::failed(name, arguments, not_found(a.id)))
            }
        }
        other => {
            tracing::warn!(tool = %other, "assistant called an unknown tool");
            Ok(Outcome::failed(
                other,
                arguments,
                format!(
                    "Unknown tool “{other}”; available: {}.",
                    TOOL_NAMES.join(", ")
                ),
            ))
        }
    }
}
