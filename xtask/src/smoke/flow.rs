//! The browser-like round trip through the frontend's forms: sign up, sign in, add, list,
//! complete and delete a task, then the chat assistant's add and the cleanup.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

use super::client::{Client, Response};
use super::page::{Form, find_form, page_error, parse_forms};

/// A browser-like session on the frontend: a cookie jar, the current page, and the throwaway
/// account and task it created.
pub(crate) struct Flow {
    pub(crate) client: Client,
    pub(crate) base: String,
    pub(crate) cookies: BTreeMap<String, String>,
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) title: String,
    /// Title of the task the chat assistant is asked to add.
    pub(crate) chat_title: String,
    pub(crate) page: String,
}

impl Flow {
    pub(crate) fn new(client: Client, base: &str) -> Self {
        let nonce = nonce();
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
            email: format!("smoke-{nonce}@example.com"),
            password: format!("smoke-pass-{nonce}"),
            title: format!("smoke task {nonce}"),
            chat_title: format!("smoke-chat-{nonce}"),
            page: String::new(),
        }
    }

    pub(crate) fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.base)
        } else {
            format!("{}/{path_or_url}", self.base)
        }
    }

    pub(crate) fn absorb(&mut self, resp: &Response) {
        for sc in &resp.set_cookies {
            let pair = sc.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = sc.to_ascii_lowercase().contains("max-age=0");
            if value.is_empty() || expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    /// GET `path`, following redirects, leaving the final page in `self.page`.
    pub(crate) fn visit(&mut self, path: &str) -> Result<u16> {
        let mut url = self.url(path);
        for _ in 0..10 {
            let resp = self.client.get(&url, &self.cookies)?;
            self.absorb(&resp);
            match (resp.status, &resp.location) {
                (300..=399, Some(loc)) => url = self.url(loc),
                _ => {
                    self.page = resp.body;
                    return Ok(resp.status);
                }
            }
        }
        bail!("too many redirects from {path}")
    }

    /// Submits `form` with `fields` set, follows the redirect, and returns the final status.
    pub(crate) fn submit(&mut self, form: &Form, fields: &[(&str, &str)]) -> Result<u16> {
        let mut values = form.fields.clone();
        for (k, v) in fields {
            if let Some(slot) = values.iter_mut().find(|(n, _)| n == k) {
                slot.1 = (*v).to_owned();
            } else {
                values.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        let url = self.url(&form.action);
        let resp = self.client.post_form(&url, &self.cookies, &values)?;
        self.absorb(&resp);
        match (resp.status, &resp.location) {
            (300..=399, Some(loc)) => {
                let loc = loc.clone();
                self.visit(&loc)
            }
            _ => {
                let status = resp.status;
                self.page = resp.body;
                Ok(status)
            }
        }
    }

    pub(crate) fn sign_up(&mut self) -> Result<()> {
        self.visit(SIGNUP_PAGE)?;
        let form = find_form(&self.page, |f| {
            f.has_field("email") && f.action.contains("signup")
        })
        .or_else(|| find_form(&self.page, |f| f.has_field("email")))
        .ok_or_else(|| anyhow::anyhow!("no sign-up form with an email field on {SIGNUP_PAGE}"))?;
        let (email, password) = (self.email.clone(), self.password.clone());
        let mut fields = vec![("email", email.as_str()), ("password", password.as_str())];
        if form.has_field("password_confirm") {
            fields.push(("password_confirm", password.as_str()));
        }
        if form.has_field("confirm_password") {
            fields.push(("confirm_password", password.as_str()));
        }
        let status = self.submit(&form, &fields)?;
        if status >= 400 {
            bail!("sign-up answered HTTP {status}: {}", page_error(&self.page));
        }
        Ok(())
    }

    pub(crate) fn sign_in(&mut self) -> Result<()> {
        // A fresh session proves the account works, not just the sign-up's cookie.
        self.cookies.clear();
        self.visit(LOGIN_PAGE)?;
        let form = find_form(&self.page, |f| {
            f.has_field("password") && f.has_field("email")
        })
        .ok_or_else(|| anyhow::anyhow!("no sign-in form on {LOGIN_PAGE}"))?;
        let (email, password) = (self.email.clone(), self.password.clone());
        let status = self.submit(
            &form,
            &[("email", email.as_str()), ("password", password.as_str())],
        )?;
        if status >= 400 {
            bail!("sign-in answered HTTP {status}: {}", page_error(&self.page));
        }
        self.visit(TASKS_PAGE)?;
        if find_form(&self.page, |f| f.has_field("title")).is_none() {
            bail!("after signing in, {TASKS_PAGE} shows no add-task form (not signed in?)");
        }
        Ok(())
    }

    pub(crate) fn add_task(&mut self) -> Result<()> {
        let form = find_form(&self.page, |f| f.has_field("title"))
            .ok_or_else(|| anyhow::anyhow!("no add-task form on {TASKS_PAGE}"))?;
        let title = self.title.clone();
        let status = self.submit(&form, &[("title", title.as_str())])?;
        if status >= 400 {
            bail!(
                "adding a task answered HTTP {status}: {}",
                page_error(&self.page)
            );
        }
        Ok(())
    }

    pub(crate) fn task_listed(&mut self) -> Result<()> {
        self.visit(TASKS_PAGE)?;
        if !self.page.contains(&self.title) {
            bail!("the new task is not on {TASKS_PAGE}");
        }
        Ok(())
    }

    /// The forms that belong to the task titled `title`: those in the same list item. The
    /// title may also appear elsewhere (the chat panel quotes it), so every occurrence is tried
    /// and the first one inside an item with forms wins.
    pub(crate) fn task_forms(&self, title: &str) -> Vec<Form> {
        let page = &self.page;
        let forms = parse_forms(page);
        for (at, _) in page.match_indices(title) {
            // The task's forms sit in the same list item; stop at the next item.
            let end = page[at..]
                .find("</li>")
                .or_else(|| page[at..].find("</article>"))
                .or_else(|| page[at..].find("</tr>"))
                .map_or(page.len(), |e| at + e);
            let start = page[..at]
                .rfind("<li")
                .or_else(|| page[..at].rfind("<article"))
                .or_else(|| page[..at].rfind("<tr"))
                .unwrap_or(at);
            let mine: Vec<Form> = forms
                .iter()
                .filter(|f| f.start >= start && f.start < end)
                .cloned()
                .collect();
            if !mine.is_empty() {
                return mine;
            }
        }
        Vec::new()
    }

    pub(crate) fn complete_task(&mut self) -> Result<()> {
        let form = self
            .task_forms(&self.title)
            .into_iter()
            .find(|f| f.action.contains("complete") || f.action.contains("toggle"))
            .ok_or_else(|| anyhow::anyhow!("no complete form next to the new task"))?;
        let status = self.submit(&form, &[])?;
        if status >= 400 {
            bail!(
                "completing answered HTTP {status}: {}",
                page_error(&self.page)
            );
        }
        self.visit(&format!("{TASKS_PAGE}?status=completed"))?;
        if !self.page.contains(&self.title) {
            bail!("the task is not listed under status=completed after completing it");
        }
        self.visit(&format!("{TASKS_PAGE}?status=pending"))?;
        if self.page.contains(&self.title) {
            bail!("the task is still listed under status=pending after completing it");
        }
        self.visit(TASKS_PAGE)?;
        Ok(())
    }

    pub(crate) fn delete_task(&mut self) -> Result<()> {
        let form = self
            .task_forms(&self.title)
            .into_iter()
            .find(|f| f.action.contains("delete"))
            .ok_or_else(|| anyhow::anyhow!("no delete form next to the task"))?;
        let status = self.submit(&form, &[])?;
        if status >= 400 {
            bail!(
                "deleting answered HTTP {status}: {}",
                page_error(&self.page)
            );
        }
        self.visit(TASKS_PAGE)?;
        if self.page.contains(&self.title) {
            bail!("the task is still listed after deleting it");
        }
        Ok(())
    }

    /// Sends `add TITLE` through the chat panel's form; the frontend posts it to the backend's
    /// `/api/chat` and redirects back to the list.
    pub(crate) fn chat_add_task(&mut self) -> Result<()> {
        self.visit(TASKS_PAGE)?;
        let form = find_form(&self.page, |f| {
            f.has_field("message") && f.action.contains("chat")
        })
        .ok_or_else(|| anyhow::anyhow!("no chat form with a `message` field on {TASKS_PAGE}"))?;
        let message = format!("add {}", self.chat_title);
        let status = self.submit(&form, &[("message", message.as_str())])?;
        if status >= 400 {
            bail!(
                "the chat message answered HTTP {status}: {}",
                page_error(&self.page)
            );
        }
        // The frontend reports an assistant failure as an error flash on the list it
        // redirects to, with HTTP 200.
        if self.page.contains("role=\"alert\"") {
            bail!("the assistant failed: {}", page_error(&self.page));
        }
        Ok(())
    }

    pub(crate) fn chat_task_listed(&mut self) -> Result<()> {
        self.visit(TASKS_PAGE)?;
        if self.task_forms(&self.chat_title).is_empty() {
            bail!(
                "the task the assistant was asked to add (`{}`) is not on {TASKS_PAGE}",
                self.chat_title
            );
        }
        Ok(())
    }

    /// Deletes the assistant's task with its delete form, so the account is left as found.
    pub(crate) fn chat_task_cleanup(&mut self) -> Result<()> {
        let form = self
            .task_forms(&self.chat_title)
            .into_iter()
            .find(|f| f.action.contains("delete"))
            .ok_or_else(|| anyhow::anyhow!("no delete form next to the assistant's task"))?;
        let status = self.submit(&form, &[])?;
        if status >= 400 {
            bail!(
                "deleting the assistant's task answered HTTP {status}: {}",
                page_error(&self.page)
            );
        }
        self.visit(TASKS_PAGE)?;
        // The chat panel still quotes the title: look for the task's own item.
        if !self.task_forms(&self.chat_title).is_empty() {
            bail!("the assistant's task is still listed after deleting it");
        }
        Ok(())
    }
}

pub(crate) const SIGNUP_PAGE: &str = "/signup";
pub(crate) const LOGIN_PAGE: &str = "/signin";
pub(crate) const TASKS_PAGE: &str = "/tasks";

pub(crate) fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos, std::process::id())
}
