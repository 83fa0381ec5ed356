//! The built-in assistant used when no AI provider is configured: a few plain commands.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::Reply;
use super::tools::{self, Outcome, ToolLimits};
use crate::db::tasks::{self, Task};

/// What the interpreter answers to anything it does not understand.
pub const HELP: &str = "I can manage your tasks with simple commands:\n\
• add buy milk — add a task\n\
• list, list pending, list completed — show tasks\n\
• complete 3, or complete buy milk — mark a task done\n\
• rename 2 to call mom — change a title\n\
• delete 2 — delete a task";

/// A task named by id (`3`, `#3`) or by (part of) its title.
enum TaskRef {
    Id(i64),
    Title(String),
}

fn task_ref(s: &str) -> TaskRef {
    let t = s.trim();
    match t.trim_start_matches('#').parse::<i64>() {
        Ok(id) => TaskRef::Id(id),
        Err(_) => TaskRef::Title(t.to_owned()),
    }
}

/// Splits off the first word, lowercased.
fn command(message: &str) -> (String, &str) {
    let m = message.trim();
    match m.split_once(char::is_whitespace) {
        Some((head, rest)) => (head.to_lowercase(), rest.trim()),
        None => (m.to_lowercase(), ""),
    }
}

/// Answers one message.
pub async fn respond(
    pool: &PgPool,
    user: Uuid,
    limits: &ToolLimits,
    message: &str,
) -> Result<Reply, sqlx::Error> {
    let message = message.trim().trim_end_matches(['.', '!']);
    let (verb, rest) = command(message);
    match verb.as_str() {
        "add" if !rest.is_empty() => {
            let out =
                tools::execute(pool, user, limits, "add_task", json!({ "title": rest })).await?;
            Ok(single(out))
        }
        "list" | "show" => {
            let status = match rest.trim_end_matches(" tasks").trim() {
                "" | "all" | "tasks" => "all",
                "pending" | "open" | "todo" => "pending",
                "completed" | "done" | "finished" => "completed",
                _ => return Ok(help()),
            };
            let out = tools::execute(
                pool,
                user,
                limits,
                "list_tasks",
                json!({ "status": status }),
            )
            .await?;
            let listed = out.listed.as_deref().unwrap_or_default();
            let mut text = render_list(listed, status);
            if out.result["truncated"] == true {
                text.push_str(&format!("\n(Only the {} newest are shown.)", listed.len()));
            }
            Ok(Reply {
                text,
                actions: vec![out.action],
            })
        }
        "complete" | "done" | "finish" if !rest.is_empty() => {
            let id = match resolve(pool, user, limits, task_ref(rest), true).await? {
                Ok(id) => id,
                Err(text) => {
                    return Ok(Reply {
                        text,
                        actions: vec![],
                    });
                }
            };
            let out =
                tools::execute(pool, user, limits, "complete_task", json!({ "id": id })).await?;
            Ok(single(out))
        }
        "delete" | "remove" if !rest.is_empty() => {
            let id = match resolve(pool, user, limits, task_ref(rest), false).await? {
                Ok(id) => id,
                Err(text) => {
                    return Ok(Reply {
                        text,
                        actions: vec![],
                    });
                }
            };
            let out =
                tools::execute(pool, user, limits, "delete_task", json!({ "id": id })).await?;
            Ok(single(out))
        }
        "rename" => {
            let Some((target, title)) = split_to(rest) else {
                return Ok(Reply {
                    text: "Say it like this: rename 2 to call mom".into(),
                    actions: vec![],
                });
            };
            let id = match resolve(pool, user, limits, task_ref(target), false).await? {
                Ok(id) => id,
                Err(text) => {
                    return Ok(Reply {
                        text,
                        actions: vec![],
                    });
                }
            };
            let out = tools::execute(
                pool,
                user,
                limits,
                "update_task",
                json!({ "id": id, "title": title }),
            )
            .await?;
            Ok(single(out))
        }
        _ => Ok(help()),
    }
}

/// Splits "2 to call mom" at the first " to " (case-insensitive).
fn split_to(rest: &str) -> Option<(&str, &str)> {
    let lower = rest.to_lowercase();
    let at = lower.find(" to ")?;
    let (target, title) = (rest[..at].trim(), rest[at + 4..].trim());
    (!target.is_empty() && !title.is_empty()).then_some((target, title))
}

fn help() -> Reply {
    Reply {
        text: HELP.to_owned(),
        actions: vec![],
    }
}

fn single(out: Outcome) -> Reply {
    Reply {
        text: out.action.summary.clone(),
        actions: vec![out.action],
    }
}

fn render_list(list: &[Task], status: &str) -> String {
    let which = match status {
        "pending" => "pending ",
        "completed" => "completed ",
        _ => "",
    };
    if list.is_empty() {
        return format!("You have no {which}tasks.");
    }
    let mut text = format!("Your {which}tasks:");
    for t in list {
        let mark = if t.completed { "✓" } else { "○" };
        text.push_str(&format!("\n{mark} #{} {}", t.id, t.title));
    }
    text
}

/// Turns a reference into an id; `Err` holds a reply explaining why it cannot.
async fn resolve(
    pool: &PgPool,
    user: Uuid,
    limits: &ToolLimits,
    r: TaskRef,
    prefer_pending: bool,
) -> Result<Result<i64, String>, sqlx::Error> {
    let title = match r {
        TaskRef::Id(id) => return Ok(Ok(id)),
        TaskRef::Title(t) => t,
    };
    let wanted = title.to_lowercase();
    // Only tasks whose title matches, and a bounded number of them.
    let mut all = tasks::find_by_title(pool, user, &title, limits.list_max).await?;
    if prefer_pending
        && all
            .iter()
            .any(|t| !t.completed && t.title.to_lowercase().contains(&wanted))
    {
        all.retain(|t| !t.completed);
    }
    let exact: Vec<&Task> = all
        .iter()
        .filter(|t| t.title.to_lowercase() == wanted)
        .collect();
    let candidates: Vec<&Task> = if exact.is_empty() {
        all.iter()
            .filter(|t| t.title.to_lowercase().contains(&wanted))
            .collect()
    } else {
        exact
    };
    Ok(match candidates.as_slice() {
        [] => Err(format!("I could not find a task called “{title}”.")),
        [one] => Ok(one.id),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|t| format!("#{} {}", t.id, t.title))
                .collect();
            Err(format!(
                "Several tasks match “{title}”: {}. Say which one by its number.",
                names.join(", ")
            ))
        }
    })
}
