//! The chat endpoint and the caller's conversations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::chat::tools::Action;
use crate::chat::{HISTORY_LIMIT, MAX_MESSAGE_CHARS};
use crate::db::CappedError;
use crate::db::conversations::{self, Conversation, Message, Role};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::{Cursor, Page, PageQuery, paged};
use axum::response::Response;

/// `POST /api/chat`: its own request timeout (a turn may wait on the AI provider).
pub(crate) fn chat_router() -> Router<AppState> {
    Router::new().route("/api/chat", post(chat))
}

/// The caller's conversations.
pub(crate) fn conversations_router() -> Router<AppState> {
    Router::new()
        .route("/api/conversations", get(list))
        .route("/api/conversations/{id}", get(show).delete(remove))
}

const NOT_FOUND: ApiError = ApiError::NotFound("conversation not found");
const TITLE_CHARS: usize = 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatRequest {
    message: String,
    #[serde(default)]
    conversation_id: Option<Uuid>,
}

#[derive(Serialize)]
struct ChatResponse {
    reply: String,
    actions: Vec<Action>,
    conversation_id: Uuid,
}

async fn chat(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<ChatRequest>,
) -> Result<Json<ChatResponse>, ApiError> {
    // Each message may cost several AI provider requests: the per-user rate bounds the bill.
    state.throttles.chat_per_user.check(&user)?;
    let message = body.message.trim();
    crate::validate::no_nul("message", message)?;
    if message.is_empty() {
        return Err(ApiError::validation("message must not be empty"));
    }
    let n = message.chars().count();
    if n > MAX_MESSAGE_CHARS {
        return Err(ApiError::validation(format!(
            "message must be at most {MAX_MESSAGE_CHARS} characters (it has {n})"
        )));
    }
    let limits = &state.limits;
    let conversation = match body.conversation_id {
        Some(id) => conversations::get(&state.pool, user, id)
            .await?
            .ok_or(NOT_FOUND)?,
        None => {
            let title: String = message.chars().take(TITLE_CHARS).collect();
            let max = limits.max_conversations_per_user;
            conversations::create(&state.pool, user, &title, max)
                .await
                .map_err(|e| match e {
                    CappedError::LimitReached => ApiError::LimitReached(format!(
                        "you have reached the limit of {max} conversations (MAX_CONVERSATIONS_PER_USER); delete some to start another"
                    )),
                    CappedError::NoOwner => ApiError::Unauthorized("invalid or expired token"),
                    CappedError::Db(e) => e.into(),
                })?
        }
    };
    let history =
        conversations::recent_messages(&state.pool, conversation.id, HISTORY_LIMIT).await?;
    let max = limits.max_messages_per_conversation;
    conversations::add_user_message(&state.pool, conversation.id, message, max)
        .await
        .map_err(|e| match e {
            CappedError::LimitReached => ApiError::LimitReached(format!(
                "this conversation has reached its limit of {max} messages (MAX_MESSAGES_PER_CONVERSATION); start a new chat"
            )),
            // Deleted while this turn started.
            CappedError::NoOwner => NOT_FOUND,
            CappedError::Db(e) => e.into(),
        })?;
    let reply = state
        .assistant
        .respond(&state.pool, user, &history, message)
        .await?;
    conversations::add_message(&state.pool, conversation.id, Role::Assistant, &reply.text).await?;
    Ok(Json(ChatResponse {
        reply: reply.text,
        actions: reply.actions,
        conversation_id: conversation.id,
    }))
}

/// `GET /api/conversations?limit=&cursor=`: one page, most recently active first.
async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = Page::from_query(&q, &state.limits)?;
    let after = match &page.after {
        Some(c) => Some((c.at()?, c.uuid_id()?)),
        None => None,
    };
    let rows = conversations::list(&state.pool, user, after, page.fetch()).await?;
    let (items, next) = page.split(rows, |c: &Conversation| Cursor::new(c.updated_at, c.id));
    let query = format!("limit={}", page.limit);
    Ok(paged(
        Json(items),
        next.as_ref(),
        "/api/conversations",
        &query,
    ))
}

/// `GET /api/conversations/{id}?limit=&cursor=`: the conversation with one page of its
/// messages: the latest ones, oldest first; `next_cursor` (and `X-Next-Cursor`) pages back to
/// older messages.
async fn show(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = Page::from_query(&q, &state.limits)?;
    let before = match &page.after {
        Some(c) => Some(c.int_id()?),
        None => None,
    };
    let c = conversations::get(&state.pool, user, id)
        .await?
        .ok_or(NOT_FOUND)?;
    let rows = conversations::messages(&state.pool, c.id, before, page.fetch()).await?;
    let (rows, next) = page.split(rows, |(id, _)| Cursor {
        micros: 0,
        id: id.to_string(),
    });
    let messages: Vec<Message> = rows.into_iter().rev().map(|(_, m)| m).collect();
    let body = Json(json!({
        "id": c.id,
        "title": c.title,
        "created_at": c.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updated_at": c.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "messages": messages,
        "next_cursor": next.as_ref().map(Cursor::encode),
    }));
    let path = format!("/api/conversations/{}", c.id);
    let query = format!("limit={}", page.limit);
    Ok(paged(body, next.as_ref(), &path, &query))
}

async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if conversations::delete(&state.pool, user, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NOT_FOUND)
    }
}
