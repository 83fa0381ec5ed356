//! The assistant panel: messages go to the backend's `/api/chat`; the conversation id is kept
//! in an HttpOnly cookie so the next page shows the whole conversation.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::back_to_list;
use crate::error::{PageError, unless_expired};
use crate::flash::Flash;
use crate::session::{self, Session};
use crate::state::AppState;
use crate::views::ChatPanel;

/// Cookie holding the current conversation id.
pub(crate) const CHAT_COOKIE: &str = "todo_chat";
/// Conversations stay resumable for a month of inactivity.
const CHAT_COOKIE_MAX_AGE: i64 = 30 * 24 * 3600;
/// Longest message accepted from the form; the backend enforces its own limit too.
const MAX_MESSAGE_CHARS: usize = 2000;

/// The conversation id from the cookie, when it is a well-formed UUID.
pub(crate) fn conversation_cookie(jar: &CookieJar) -> Option<String> {
    jar.get(CHAT_COOKIE)
        .and_then(|c| uuid::Uuid::parse_str(c.value()).ok())
        .map(|u| u.to_string())
}

/// Loads the panel for the current conversation; a missing or failing one shows the greeting.
pub(crate) async fn panel(
    state: &AppState,
    session: &Session,
    conversation_id: Option<&str>,
) -> ChatPanel {
    let Some(id) = conversation_id else {
        return ChatPanel::default();
    };
    match state.backend.conversation(&session.token, id).await {
        Ok(conv) => ChatPanel {
            conversation_id: Some(conv.id),
            messages: conv.messages,
            notice: None,
        },
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => ChatPanel::default(),
        Err(e) => ChatPanel {
            notice: Some(format!(
                "The conversation could not be loaded. {}",
                e.user_message()
            )),
            ..ChatPanel::default()
        },
    }
}

/// Fields of the chat form.
#[derive(Deserialize)]
pub(crate) struct ChatForm {
    #[serde(default)]
    message: String,
    status: Option<String>,
}

/// `POST /chat`: one turn; the redirect reloads the list, so it shows what the assistant changed.
pub(crate) async fn send(
    State(state): State<AppState>,
    session: Session,
    jar: CookieJar,
    Form(form): Form<ChatForm>,
) -> Result<(CookieJar, Redirect), PageError> {
    let message = form.message.trim();
    let secure = state.cookie_secure;
    let back = back_to_list(form.status.as_deref());
    if message.is_empty() {
        let jar = Flash::error("Type a message for the assistant first.").set(jar, secure);
        return Ok((jar, back));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        let jar = Flash::error(format!(
            "That message is too long; keep it under {MAX_MESSAGE_CHARS} characters."
        ))
        .set(jar, secure);
        return Ok((jar, back));
    }
    let conversation_id = conversation_cookie(&jar);
    let reply = state
        .backend
        .chat(&session.token, message, conversation_id.as_deref())
        .await;
    let jar = match unless_expired(reply)? {
        Ok(reply) => {
            let jar = jar.add(session::cookie(
                CHAT_COOKIE,
                reply.conversation_id.clone(),
                secure,
                Some(CHAT_COOKIE_MAX_AGE),
            ));
            let changes: Vec<&str> = reply
                .actions
                .iter()
                .filter(|a| a.ok && a.tool != "list_tasks" && !a.summary.is_empty())
                .map(|a| a.summary.as_str())
                .collect();
            if changes.is_empty() {
                jar
            } else {
                Flash::success(format!("Assistant: {}", changes.join(" · "))).set(jar, secure)
            }
        }
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
            // Either the remembered conversation is gone or the backend has no assistant.
            let (jar, text) = if conversation_id.is_some() {
                (
                    jar.remove(session::removal(CHAT_COOKIE, secure)),
                    "That conversation no longer exists, so a new one was started. Please send your message again.",
                )
            } else {
                (jar, "The assistant is not available on this server.")
            };
            Flash::error(text).set(jar, secure)
        }
        Err(e) => Flash::error(format!(
            "The assistant could not answer: {}",
            e.user_message()
        ))
        .set(jar, secure),
    };
    Ok((jar, back))
}

/// Fields of the "new chat" button form.
#[derive(Deserialize)]
pub(crate) struct NewChatForm {
    status: Option<String>,
}

/// `POST /chat/new`: forgets the current conversation (it stays stored on the backend).
pub(crate) async fn new_chat(
    State(state): State<AppState>,
    _session: Session,
    jar: CookieJar,
    Form(form): Form<NewChatForm>,
) -> (CookieJar, Redirect) {
    let jar = jar.remove(session::removal(CHAT_COOKIE, state.cookie_secure));
    (jar, back_to_list(form.status.as_deref()))
}
