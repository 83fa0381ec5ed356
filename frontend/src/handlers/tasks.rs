//! The task list and its forms: add, edit, complete or reopen, delete, filter.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::{PageCtx, PagePath, PageQuery, StatusQuery, back_to_list, chat};
use crate::backend::{BackendError, TaskInput, is_cursor};
use crate::error::{PageError, both, unless_expired};
use crate::flash::Flash;
use crate::session::Session;
use crate::state::AppState;
use crate::views::{EditPage, Filter, TaskView, TasksPage, render};

/// `GET /`: the list for signed-in visitors, the sign-in page for others.
pub(crate) async fn index(jar: CookieJar) -> Redirect {
    if Session::from_jar(&jar).is_some() {
        Redirect::to("/tasks")
    } else {
        Redirect::to("/signin")
    }
}

/// The list's query: the filter and, past the first page, where the page starts.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

/// `GET /tasks?status=all|pending|completed[&cursor=…]`: one page of the list, newest first,
/// with a link to the older tasks when there are more.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    ctx: PageCtx,
    jar: CookieJar,
    PageQuery(query): PageQuery<ListQuery>,
) -> Result<Response, PageError> {
    let filter = Filter::parse(query.status.as_deref()).ok_or(PageError::UnknownFilter)?;
    // A cursor that is not one (edited by hand) shows the first page.
    let cursor = query.cursor.filter(|c| is_cursor(c));
    let conversation_id = chat::conversation_cookie(&jar);
    let (tasks, me, chat) = tokio::join!(
        state
            .backend
            .list_tasks(&session.token, filter.as_str(), cursor.as_deref()),
        state.backend.me(&session.token),
        chat::panel(&state, &session, conversation_id.as_deref()),
    );
    let ((tasks, next_cursor), me) = both(tasks, me)?;
    let page = TasksPage {
        page: ctx.base(Some(me.email)),
        tasks: tasks.into_iter().map(TaskView::new).collect(),
        filter,
        chat,
        next_cursor,
        later_page: cursor.is_some(),
    };
    Ok(render(&page, StatusCode::OK))
}

/// Fields of the add and edit forms.
#[derive(Deserialize)]
pub(crate) struct TaskForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    /// Present (as `true`) when the edit form's checkbox is ticked.
    completed: Option<String>,
    /// Filter to return to.
    status: Option<String>,
}

fn description(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|d| !d.is_empty())
}

/// `POST /tasks`.
pub(crate) async fn create(
    State(state): State<AppState>,
    session: Session,
    jar: CookieJar,
    Form(form): Form<TaskForm>,
) -> Result<(CookieJar, Redirect), PageError> {
    let input = TaskInput {
        title: &form.title,
        description: description(&form.description),
        completed: None,
    };
    let flash = match unless_expired(state.backend.create_task(&session.token, &input).await)? {
        Ok(task) => Flash::success(format!("Added “{}”.", task.title)),
        Err(e) => Flash::error(format!("Could not add the task: {}", e.user_message())),
    };
    let jar = flash.set(jar, state.cookie_secure);
    Ok((jar, back_to_list(form.status.as_deref())))
}

/// `GET /tasks/{id}/edit`.
pub(crate) async fn edit_page(
    State(state): State<AppState>,
    session: Session,
    ctx: PageCtx,
    PagePath(id): PagePath<i64>,
    PageQuery(query): PageQuery<StatusQuery>,
) -> Result<Response, PageError> {
    let (task, me) = tokio::join!(
        state.backend.get_task(&session.token, id),
        state.backend.me(&session.token)
    );
    let (task, me) = both(task, me)?;
    let page = EditPage {
        page: ctx.base(Some(me.email)),
        id,
        title: task.title,
        description: task.description.unwrap_or_default(),
        completed: task.completed,
        back: Filter::or_all(query.status.as_deref()).as_str(),
        error: None,
    };
    Ok(render(&page, StatusCode::OK))
}

/// `POST /tasks/{id}`: saves the edit form; on a validation error shows the form again with
/// what was typed.
pub(crate) async fn update(
    State(state): State<AppState>,
    session: Session,
    ctx: PageCtx,
    jar: CookieJar,
    PagePath(id): PagePath<i64>,
    Form(form): Form<TaskForm>,
) -> Result<Response, PageError> {
    let input = TaskInput {
        title: &form.title,
        description: Some(form.description.trim()),
        completed: Some(form.completed.is_some()),
    };
    match unless_expired(state.backend.update_task(&session.token, id, &input).await)? {
        Ok(task) => {
            let jar =
                Flash::success(format!("Saved “{}”.", task.title)).set(jar, state.cookie_secure);
            Ok((jar, back_to_list(form.status.as_deref())).into_response())
        }
        Err(e @ BackendError::Api { status, .. }) if status != StatusCode::NOT_FOUND => {
            let email = state.backend.me(&session.token).await.ok().map(|m| m.email);
            let page = EditPage {
                page: ctx.base(email),
                id,
                title: form.title,
                description: form.description,
                completed: form.completed.is_some(),
                back: Filter::or_all(form.status.as_deref()).as_str(),
                error: Some(e.user_message()),
            };
            Ok(render(&page, status))
        }
        Err(e) => Err(e.into()),
    }
}

/// Fields of the complete/reopen button form.
#[derive(Deserialize)]
pub(crate) struct CompleteForm {
    /// `false` to reopen; anything else completes.
    completed: Option<String>,
    status: Option<String>,
}

/// `POST /tasks/{id}/complete`.
pub(crate) async fn complete(
    State(state): State<AppState>,
    session: Session,
    jar: CookieJar,
    PagePath(id): PagePath<i64>,
    Form(form): Form<CompleteForm>,
) -> Result<(CookieJar, Redirect), PageError> {
    let completed = form.completed.as_deref() != Some("false");
    let result = state
        .backend
        .set_completed(&session.token, id, completed)
        .await;
    let flash = match unless_expired(result)? {
        Ok(task) if task.completed => Flash::success(format!("Nice! “{}” is done.", task.title)),
        Ok(task) => Flash::success(format!("Reopened “{}”.", task.title)),
        Err(e) => Flash::error(format!("Could not update the task: {}", e.user_message())),
    };
    let jar = flash.set(jar, state.cookie_secure);
    Ok((jar, back_to_list(form.status.as_deref())))
}

/// Fields of the delete button form.
#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    status: Option<String>,
}

/// `POST /tasks/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    session: Session,
    jar: CookieJar,
    PagePath(id): PagePath<i64>,
    Form(form): Form<DeleteForm>,
) -> Result<(CookieJar, Redirect), PageError> {
    let flash = match unless_expired(state.backend.delete_task(&session.token, id).await)? {
        Ok(()) => Flash::success("Task deleted."),
        Err(e) => Flash::error(format!("Could not delete the task: {}", e.user_message())),
    };
    let jar = flash.set(jar, state.cookie_secure);
    Ok((jar, back_to_list(form.status.as_deref())))
}
