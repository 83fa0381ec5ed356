//! Page models rendered by askama templates in `frontend/templates/` (checked at compile time).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::backend::{ChatMessage, Task};
use crate::flash::Flash;

/// What every page's layout needs.
#[derive(Debug, Clone, Default)]
pub struct PageBase {
    /// CSRF token for the forms on the page.
    pub csrf: String,
    /// Message from the previous request, shown once.
    pub flash: Option<Flash>,
    /// Email of the signed-in account; `None` when signed out.
    pub email: Option<String>,
}

/// Renders a template with a status, turning a (should-not-happen) render error into a 500.
pub fn render<T: Template>(template: &T, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
        }
    }
}

/// A page that explains a problem and offers a way back.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Layout data.
    pub page: PageBase,
    /// Short title.
    pub heading: String,
    /// What happened and what to do.
    pub message: String,
}

impl ErrorPage {
    /// An error page for a visitor whose session state is unknown. It shows no account menu,
    /// so it holds no form and needs no CSRF token.
    pub fn new(heading: &str, message: &str) -> Self {
        Self {
            page: PageBase::default(),
            heading: heading.to_owned(),
            message: message.to_owned(),
        }
    }

    /// Renders with `status`.
    pub fn respond(&self, status: StatusCode) -> Response {
        render(self, status)
    }
}

/// Sign-in form.
#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    /// Layout data.
    pub page: PageBase,
    /// Email to prefill after a failed attempt.
    pub email: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Sign-up form.
#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignUpPage {
    /// Layout data.
    pub page: PageBase,
    /// Email to prefill after a failed attempt.
    pub email: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Which tasks the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every task.
    All,
    /// Not yet completed.
    Pending,
    /// Completed.
    Completed,
}

impl Filter {
    /// All filters in display order.
    pub const ALL: [Filter; 3] = [Filter::All, Filter::Pending, Filter::Completed];

    /// Parses the `status` query value; `None` for anything unknown.
    pub fn parse(raw: Option<&str>) -> Option<Self> {
        match raw.unwrap_or("all") {
            "" | "all" => Some(Self::All),
            "pending" => Some(Self::Pending),
            "completed" => Some(Self::Completed),
            _ => None,
        }
    }

    /// Like [`Filter::parse`], but anything unknown is [`Filter::All`]: for the way back to a
    /// list, where an odd value is better ignored than refused.
    pub fn or_all(raw: Option<&str>) -> Self {
        Self::parse(raw).unwrap_or(Self::All)
    }

    /// The API and query value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Pending => "pending",
            Self::Completed => "completed",
        }
    }

    /// The tab label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::All => "All",
            Self::Pending => "To do",
            Self::Completed => "Done",
        }
    }
}

/// A task prepared for display.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// Backend id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Description, if any.
    pub description: Option<String>,
    /// Done or not.
    pub completed: bool,
    /// Creation date for people, e.g. `26 Nov 2026`.
    pub created: String,
}

impl TaskView {
    /// Prepares `task` for display.
    pub fn new(task: Task) -> Self {
        Self {
            created: human_date(&task.created_at),
            id: task.id,
            title: task.title,
            description: task.description.filter(|d| !d.trim().is_empty()),
            completed: task.completed,
        }
    }
}

fn human_date(rfc3339: &str) -> String {
    let parsed =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339);
    let format = time::format_description::parse_borrowed::<2>(
        "[day padding:none] [month repr:short] [year]",
    );
    match (parsed, format) {
        (Ok(t), Ok(f)) => t.format(&f).unwrap_or_else(|_| rfc3339.to_owned()),
        _ => rfc3339.get(..10).unwrap_or(rfc3339).to_owned(),
    }
}

/// The assistant panel beside the list.
#[derive(Debug, Clone, Default)]
pub struct ChatPanel {
    /// Current conversation, if one was started.
    pub conversation_id: Option<String>,
    /// Its messages, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Set when the conversation could not be loaded.
    pub notice: Option<String>,
}

/// The main page: the task list with its forms, and the assistant.
#[derive(Template)]
#[template(path = "tasks.html")]
pub struct TasksPage {
    /// Layout data.
    pub page: PageBase,
    /// Tasks matching the filter.
    pub tasks: Vec<TaskView>,
    /// Current filter.
    pub filter: Filter,
    /// The chat panel.
    pub chat: ChatPanel,
    /// Cursor of the next (older) page, when there is one.
    pub next_cursor: Option<String>,
    /// Whether this is a later page (then a link leads back to the newest tasks).
    pub later_page: bool,
}

impl TasksPage {
    /// Heading shown above an empty list, per filter.
    pub fn empty_message(&self) -> &'static str {
        if self.later_page {
            return "No older tasks.";
        }
        match self.filter {
            Filter::All => "Nothing here yet. Add your first task above.",
            Filter::Pending => "All done. Enjoy the free time!",
            Filter::Completed => "No completed tasks yet.",
        }
    }
}

/// The edit form for one task.
#[derive(Template)]
#[template(path = "edit.html")]
pub struct EditPage {
    /// Layout data.
    pub page: PageBase,
    /// Task id.
    pub id: i64,
    /// Title as typed.
    pub title: String,
    /// Description as typed.
    pub description: String,
    /// Completed checkbox state.
    pub completed: bool,
    /// Filter to return to.
    pub back: &'static str,
    /// Why the last save failed.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_human() {
        assert_eq!(human_date("2026-11-05T10:00:00Z"), "5 Nov 2026");
        assert_eq!(human_date("2026-11-05 junk"), "2026-11-05");
    }

    #[test]
    fn filters_parse() {
        assert_eq!(Filter::parse(None), Some(Filter::All));
        assert_eq!(Filter::parse(Some("pending")), Some(Filter::Pending));
        assert_eq!(Filter::parse(Some("done")), None);
    }

    #[test]
    fn templates_escape_html() {
        let page = ErrorPage::new("<script>", "a & b");
        let html = page.render().unwrap_or_default();
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
