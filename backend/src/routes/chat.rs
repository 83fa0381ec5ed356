//! The chat endpoint and the caller's conversations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::chat::tools::Action;
use crate::chat::{HISTORY_LIMIT, MAX_MESSAGE_CHARS};
use crate::db::conversations::{self, Conversation, Role};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chat", post(chat))
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
    if message.is_empty() {
        return Err(ApiError::validation("message must not be empty"));
    }
    let n = message.chars().count();
    if n > MAX_MESSAGE_CHARS {
        return Err(ApiError::validation(format!(
            "message must be at most {MAX_MESSAGE_CHARS} characters (it has {n})"
        )));
    }
    let conversation = match body.conversation_id {
        Some(id) => conversations::get(&state.pool, user, id)
            .await?
            .ok_or(NOT_FOUND)?,
        None => {
            let title: String = message.chars().take(TITLE_CHARS).collect();
            conversations::create(&state.pool, user, &title).await?
        }
    };
    let history =
        conversations::recent_messages(&state.pool, conversation.id, HISTORY_LIMIT).await?;
    conversations::add_message(&state.pool, conversation.id, Role::User, message).await?;
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

async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<Conversation>>, ApiError> {
    Ok(Json(conversations::list(&state.pool, user).await?))
}

async fn show(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let c = conversations::get(&state.pool, user, id)
        .await?
        .ok_or(NOT_FOUND)?;
    let messages = conversations::messages(&state.pool, c.id).await?;
    Ok(Json(json!({
        "id": c.id,
        "title": c.title,
        "created_at": c.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updated_at": c.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "messages": messages,
    })))
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
