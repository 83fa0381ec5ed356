//! The smoke test: an HTTP round trip against a live deployment, shared by both targets.
//!
//! It checks both services' `/health` and `/ready` (retrying until a deadline, since a fresh
//! deployment may still be starting), then drives the frontend's own HTML forms the way a
//! browser would: cookies, the hidden CSRF field, POST-redirect-GET. A throwaway user signs up,
//! signs in, adds a task, sees it listed, completes it and deletes it; then asks the chat
//! assistant to add a task (the backend's built-in interpreter understands `add TITLE` when no
//! AI provider is configured), sees that task in the list and deletes it again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

/// Where the live deployment answers.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Base URL of the frontend, e.g. `http://127.0.0.1:3000`.
    pub frontend: String,
    /// Base URL of the backend, when reachable from here (health checks only).
    pub backend: Option<String>,
}

/// How long to keep retrying the readiness checks.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline for `/health` and `/ready` to start answering 200.
    pub ready_timeout: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// The fix named when the app cannot be connected to (target-specific); a generic one
    /// when `None`.
    pub unreachable_fix: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ready_timeout: Duration::from_secs(90),
            request_timeout: Duration::from_secs(15),
            unreachable_fix: None,
        }
    }
}

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, with the reason.
    Fail(String),
    /// Not attempted because an earlier step it needs failed.
    Skipped,
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked, e.g. `backend /ready`.
    pub name: String,
    /// How it went.
    pub outcome: Outcome,
    /// Time it took (including retries).
    pub elapsed: Duration,
}

/// Every check of one smoke run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome == Outcome::Pass)
    }

    /// A plain-text table: check, result, time.
    pub fn table(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{:<width$}  {:<6}  {:>8}", "check", "result", "time");
        for c in &self.checks {
            let (result, detail) = match &c.outcome {
                Outcome::Pass => ("ok", String::new()),
                Outcome::Fail(why) => ("FAIL", format!("  {why}")),
                Outcome::Skipped => ("skip", String::new()),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:<6}  {:>7.2}s{}",
                c.name,
                result,
                c.elapsed.as_secs_f64(),
                detail
            );
        }
        out
    }

    /// `Ok` when everything passed, otherwise an error listing the failures.
    pub fn into_result(self) -> Result<Self> {
        let failures: Vec<String> = self
            .checks
            .iter()
            .filter_map(|c| match &c.outcome {
                Outcome::Fail(why) => Some(format!("{}: {why}", c.name)),
                _ => None,
            })
            .collect();
        if failures.is_empty() {
            Ok(self)
        } else {
            bail!("smoke test failed:\n  {}", failures.join("\n  "))
        }
    }

    fn record(&mut self, name: &str, started: Instant, res: Result<()>) -> bool {
        let outcome = match res {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(format!("{e:#}").replace('\n', " ")),
        };
        let ok = outcome == Outcome::Pass;
        self.checks.push(Check {
            name: name.to_owned(),
            outcome,
            elapsed: started.elapsed(),
        });
        ok
    }

    fn skip(&mut self, name: &str) {
        self.checks.push(Check {
            name: name.to_owned(),
            outcome: Outcome::Skipped,
            elapsed: Duration::ZERO,
        });
    }
}

/// Runs every check against `endpoints`; never stops at the first failure of a health check,
/// so the table shows the whole picture. `progress` sees each check's name as it starts.
pub fn run(endpoints: &Endpoints, opts: &Options, mut progress: impl FnMut(&str)) -> Report {
    let mut report = Report::default();
    let deadline = Instant::now() + opts.ready_timeout;
    let mut client = Client::new(opts.request_timeout);
    if let Some(fix) = &opts.unreachable_fix {
        client.fix.clone_from(fix);
    }

    let mut targets: Vec<(&str, &str)> = Vec::new();
    if let Some(b) = &endpoints.backend {
        targets.push(("backend", b.as_str()));
    }
    targets.push(("frontend", endpoints.frontend.as_str()));
    let mut all_ready = true;
    for (service, base) in &targets {
        for path in ["/health", "/ready"] {
            let name = format!("{service} {path}");
            progress(&name);
            let started = Instant::now();
            let res = wait_ok(&client, &format!("{base}{path}"), deadline);
            all_ready &= report.record(&name, started, res);
        }
    }

    let steps = [
        "sign up",
        "sign in",
        "add task",
        "task listed",
        "complete task",
        "delete task",
        "chat add task",
        "chat task listed",
        "chat task cleanup",
    ];
    if !all_ready {
        for s in steps {
            report.skip(s);
        }
        return report;
    }
    let mut flow = Flow::new(client, &endpoints.frontend);
    for (i, step) in steps.iter().enumerate() {
        progress(step);
        let started = Instant::now();
        let res = match i {
            0 => flow.sign_up(),
            1 => flow.sign_in(),
            2 => flow.add_task(),
            3 => flow.task_listed(),
            4 => flow.complete_task(),
            5 => flow.delete_task(),
            6 => flow.chat_add_task(),
            7 => flow.chat_task_listed(),
            _ => flow.chat_task_cleanup(),
        };
        if !report.record(step, started, res) {
            for s in &steps[i + 1..] {
                report.skip(s);
            }
            break;
        }
    }
    report
}

/// Polls `url` until it answers 200 or the deadline passes; the error is the last answer.
fn wait_ok(client: &Client, url: &str, deadline: Instant) -> Result<()> {
    loop {
        let last = match client.get(url, &BTreeMap::new()) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => format!("{url}: HTTP {} {}", r.status, first_line(&r.body)),
            // Already names the URL (once) and the fix.
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{last}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    line.chars().take(160).collect()
}

/// A response reduced to what the checks look at.
#[derive(Debug)]
struct Response {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

/// A blocking HTTP client that never follows redirects (the flow follows them itself so it
/// sees every `Set-Cookie`).
struct Client {
    agent: ureq::Agent,
    /// Named when a request cannot connect.
    fix: String,
}

/// The fix for an unreachable app when the target gave none.
const GENERIC_UNREACHABLE_FIX: &str =
    "check that the app is deployed and running: `cargo xtask status`";

/// One line for a request that got no HTTP answer: what failed, the URL once, and the fix.
/// (ureq's own message repeats the URL.)
fn unreachable(url: &str, t: &ureq::Transport, fix: &str) -> String {
    let mut why = t.kind().to_string();
    if let Some(m) = t.message() {
        why = format!("{why}: {m}");
    }
    if let Some(source) = std::error::Error::source(t) {
        why = format!("{why}: {source}");
    }
    format!("cannot connect to {url} ({why}); fix: {fix}")
}

impl Client {
    fn new(timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(timeout)
            .build();
        Self {
            agent,
            fix: GENERIC_UNREACHABLE_FIX.to_owned(),
        }
    }

    fn get(&self, url: &str, cookies: &BTreeMap<String, String>) -> Result<Response> {
        let req = with_cookies(self.agent.get(url), cookies);
        self.finish(url, req.call())
    }

    fn post_form(
        &self,
        url: &str,
        cookies: &BTreeMap<String, String>,
        fields: &[(String, String)],
    ) -> Result<Response> {
        let req = with_cookies(self.agent.post(url), cookies);
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.finish(url, req.send_form(&pairs))
    }

    fn finish(&self, url: &str, res: Result<ureq::Response, ureq::Error>) -> Result<Response> {
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => bail!("{}", unreachable(url, &t, &self.fix)),
        };
        let status = resp.status();
        let location = resp.header("location").map(str::to_owned);
        let set_cookies = resp
            .all("set-cookie")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let body = resp.into_string().unwrap_or_default();
        Ok(Response {
            status,
            location,
            set_cookies,
            body,
        })
    }
}

fn with_cookies(req: ureq::Request, cookies: &BTreeMap<String, String>) -> ureq::Request {
    if cookies.is_empty() {
        return req;
    }
    let header = cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    req.set("Cookie", &header)
}

/// A browser-like session on the frontend: a cookie jar, the current page, and the throwaway
/// account and task it created.
struct Flow {
    client: Client,
    base: String,
    cookies: BTreeMap<String, String>,
    email: String,
    password: String,
    title: String,
    /// Title of the task the chat assistant is asked to add.
    chat_title: String,
    page: String,
}

impl Flow {
    fn new(client: Client, base: &str) -> Self {
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

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.base)
        } else {
            format!("{}/{path_or_url}", self.base)
        }
    }

    fn absorb(&mut self, resp: &Response) {
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
    fn visit(&mut self, path: &str) -> Result<u16> {
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
    fn submit(&mut self, form: &Form, fields: &[(&str, &str)]) -> Result<u16> {
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

    fn sign_up(&mut self) -> Result<()> {
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

    fn sign_in(&mut self) -> Result<()> {
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

    fn add_task(&mut self) -> Result<()> {
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

    fn task_listed(&mut self) -> Result<()> {
        self.visit(TASKS_PAGE)?;
        if !self.page.contains(&self.title) {
            bail!("the new task is not on {TASKS_PAGE}");
        }
        Ok(())
    }

    /// The forms that belong to the task titled `title`: those in the same list item. The
    /// title may also appear elsewhere (the chat panel quotes it), so every occurrence is tried
    /// and the first one inside an item with forms wins.
    fn task_forms(&self, title: &str) -> Vec<Form> {
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

    fn complete_task(&mut self) -> Result<()> {
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

    fn delete_task(&mut self) -> Result<()> {
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
    fn chat_add_task(&mut self) -> Result<()> {
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

    fn chat_task_listed(&mut self) -> Result<()> {
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
    fn chat_task_cleanup(&mut self) -> Result<()> {
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

const SIGNUP_PAGE: &str = "/signup";
const LOGIN_PAGE: &str = "/signin";
const TASKS_PAGE: &str = "/tasks";

fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos, std::process::id())
}

/// The text of the page's error message, if it shows one, for failure reports.
fn page_error(page: &str) -> String {
    for marker in ["class=\"flash", "class=\"error", "role=\"alert\""] {
        if let Some(at) = page.find(marker) {
            let rest = &page[at..];
            let text = strip_tags(rest.split_once('>').map_or(rest, |(_, r)| r));
            let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            return text.chars().take(160).collect();
        }
    }
    "no error message on the page".to_owned()
}

fn strip_tags(s: &str) -> String {
    let end = s.find("</").unwrap_or(s.len());
    let mut out = String::new();
    let mut in_tag = false;
    for ch in s[..end].chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    html_unescape(&out)
}

/// One `<form>` on a page: where it posts, and its named inputs with their initial values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Form {
    action: String,
    method: String,
    fields: Vec<(String, String)>,
    start: usize,
}

impl Form {
    fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }
}

fn find_form(page: &str, pred: impl Fn(&Form) -> bool) -> Option<Form> {
    parse_forms(page).into_iter().find(|f| pred(f))
}

/// A forgiving scan of the forms in an HTML page (our own templates, not arbitrary HTML):
/// `<input>`, `<textarea>`, `<select>` and `<button name=… value=…>` with their values.
fn parse_forms(page: &str) -> Vec<Form> {
    let lower = page.to_ascii_lowercase();
    let mut forms = Vec::new();
    let mut pos = 0;
    while let Some(off) = lower[pos..].find("<form") {
        let start = pos + off;
        let Some(tag_end) = lower[start..].find('>').map(|e| start + e) else {
            break;
        };
        let end = lower[tag_end..]
            .find("</form")
            .map_or(page.len(), |e| tag_end + e);
        let tag = &page[start..=tag_end];
        let action = attr(tag, "action").unwrap_or_default();
        let method = attr(tag, "method")
            .unwrap_or_else(|| "get".to_owned())
            .to_ascii_lowercase();
        let mut fields = Vec::new();
        let body = &page[tag_end + 1..end];
        let body_lower = &lower[tag_end + 1..end];
        let mut i = 0;
        while let Some(o) = body_lower[i..].find('<') {
            let s = i + o;
            let Some(e) = body_lower[s..].find('>').map(|e| s + e) else {
                break;
            };
            let el = &body[s..=e];
            let el_lower = &body_lower[s..=e];
            if el_lower.starts_with("<input") {
                let kind = attr(el, "type").unwrap_or_default().to_ascii_lowercase();
                let checkable = kind == "checkbox" || kind == "radio";
                if let Some(name) = attr(el, "name")
                    && kind != "submit"
                    && (!checkable || el_lower.contains("checked"))
                {
                    fields.push((name, attr(el, "value").unwrap_or_default()));
                }
            } else if el_lower.starts_with("<textarea") {
                if let Some(name) = attr(el, "name") {
                    let text_end = body_lower[e..].find("</textarea").map_or(e + 1, |t| e + t);
                    fields.push((name, html_unescape(&body[e + 1..text_end])));
                }
            } else if el_lower.starts_with("<select")
                && let Some(name) = attr(el, "name")
            {
                fields.push((name, String::new()));
            }
            i = e + 1;
        }
        forms.push(Form {
            action,
            method,
            fields,
            start,
        });
        pos = end.max(tag_end + 1);
    }
    forms
}

/// The value of attribute `name` in one tag, quoted with `"` or `'` or bare.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(off) = lower[from..].find(name) {
        let at = from + off;
        from = at + name.len();
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[at + name.len()..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - rest.len() + 1;
        let raw = tag[value_start..].trim_start();
        let value = if let Some(r) = raw.strip_prefix('"') {
            r.split('"').next().unwrap_or("")
        } else if let Some(r) = raw.strip_prefix('\'') {
            r.split('\'').next().unwrap_or("")
        } else {
            raw.split(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
                .next()
                .unwrap_or("")
        };
        return Some(html_unescape(value));
    }
    None
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PAGE: &str = r#"<html><body>
      <form method="post" action="/tasks">
        <input type="hidden" name="csrf_token" value="a&amp;b">
        <input type="text" name="title" value="">
        <textarea name="description">x &lt; y</textarea>
        <input type="checkbox" name="urgent" value="1">
        <button type="submit">Add</button>
      </form>
      <ul>
        <li><span>smoke task 1</span>
          <form method='post' action='/tasks/7/complete'><input type=hidden name=csrf_token value=t1></form>
          <form method="post" action="/tasks/7/delete"><input type="hidden" name="csrf_token" value="t1"></form>
        </li>
        <li><span>other</span>
          <form method="post" action="/tasks/8/delete"></form>
        </li>
      </ul></body></html>"#;

    #[test]
    fn parses_forms_fields_and_csrf() {
        let forms = parse_forms(PAGE);
        assert_eq!(forms.len(), 4);
        assert_eq!(forms[0].action, "/tasks");
        assert_eq!(forms[0].method, "post");
        assert_eq!(
            forms[0].fields,
            vec![
                ("csrf_token".to_owned(), "a&b".to_owned()),
                ("title".to_owned(), String::new()),
                ("description".to_owned(), "x < y".to_owned()),
            ]
        );
        assert_eq!(forms[1].action, "/tasks/7/complete");
        assert_eq!(
            forms[1].fields,
            vec![("csrf_token".to_owned(), "t1".to_owned())]
        );
    }

    #[test]
    fn task_forms_are_scoped_to_the_tasks_item() {
        let mut flow = Flow::new(Client::new(Duration::from_secs(1)), "http://x");
        flow.title = "smoke task 1".into();
        flow.page = PAGE.into();
        let actions: Vec<String> = flow
            .task_forms("smoke task 1")
            .into_iter()
            .map(|f| f.action)
            .collect();
        assert_eq!(actions, vec!["/tasks/7/complete", "/tasks/7/delete"]);
    }

    /// The shape of `frontend/templates/tasks.html` after a chat turn: the task in the list,
    /// and the chat panel quoting the title in its messages before its own form.
    const CHAT_PAGE: &str = r#"<ul class="task-list">
        <li class="task" id="task-9"><form method="post" action="/tasks/9/complete"></form>
          <span class="task-title">smoke-chat-1</span>
          <form method="post" action="/tasks/9/delete"><input type="hidden" name="csrf_token" value="t"></form>
        </li></ul>
      <aside class="card chat"><ol class="messages">
        <li class="msg msg-user">add smoke-chat-1</li>
        <li class="msg msg-assistant">Added #9 “smoke-chat-1”.</li></ol>
        <form method="post" action="/chat" class="chat-form">
          <input type="hidden" name="csrf_token" value="t">
          <input type="hidden" name="status" value="all">
          <input type="text" name="message" maxlength="2000" required autocomplete="off">
        </form></aside>"#;

    #[test]
    fn chat_form_found_and_chat_quotes_are_not_list_items() {
        let chat = find_form(CHAT_PAGE, |f| {
            f.has_field("message") && f.action.contains("chat")
        })
        .unwrap();
        assert_eq!(chat.action, "/chat");
        assert!(chat.has_field("csrf_token") && chat.has_field("status"));

        let mut flow = Flow::new(Client::new(Duration::from_secs(1)), "http://x");
        flow.page = CHAT_PAGE.into();
        let actions: Vec<String> = flow
            .task_forms("smoke-chat-1")
            .into_iter()
            .map(|f| f.action)
            .collect();
        assert_eq!(actions, vec!["/tasks/9/complete", "/tasks/9/delete"]);
        // Once deleted, only the chat's quotes remain: not listed.
        let start = CHAT_PAGE.find("<ul").unwrap();
        let end = CHAT_PAGE.find("</ul>").unwrap() + 5;
        flow.page = format!("{}{}", &CHAT_PAGE[..start], &CHAT_PAGE[end..]);
        assert!(flow.page.contains("smoke-chat-1"));
        assert!(flow.task_forms("smoke-chat-1").is_empty());
    }

    #[test]
    fn cookie_jar_sets_and_clears() {
        let mut flow = Flow::new(Client::new(Duration::from_secs(1)), "http://x/");
        let resp = |c: &[&str]| Response {
            status: 303,
            location: None,
            set_cookies: c.iter().map(|s| (*s).to_owned()).collect(),
            body: String::new(),
        };
        flow.absorb(&resp(&["session=abc; Path=/; HttpOnly", "csrf=z; Path=/"]));
        assert_eq!(flow.cookies.len(), 2);
        flow.absorb(&resp(&["session=; Path=/; Max-Age=0"]));
        assert_eq!(flow.cookies.keys().collect::<Vec<_>>(), vec!["csrf"]);
        assert_eq!(flow.url("/tasks"), "http://x/tasks");
    }

    #[test]
    fn report_table_and_errors() {
        let mut r = Report::default();
        r.record("a", Instant::now(), Ok(()));
        r.record("b", Instant::now(), Err(anyhow::anyhow!("boom")));
        r.skip("c");
        assert!(!r.passed());
        let t = r.table();
        assert!(t.contains("FAIL") && t.contains("boom") && t.contains("skip"));
        let err = r.into_result().unwrap_err().to_string();
        assert!(err.contains("b: boom") && !err.contains("a:"));
    }

    #[test]
    fn health_check_reports_unreachable_url() {
        let mut client = Client::new(Duration::from_millis(300));
        client.fix = "`cargo xtask status --target docker`".to_owned();
        // Port 9 (discard) on loopback is essentially never served.
        let err = format!(
            "{:#}",
            wait_ok(&client, "http://127.0.0.1:9/health", Instant::now()).unwrap_err()
        );
        assert!(
            err.starts_with("cannot connect to http://127.0.0.1:9/health ("),
            "{err}"
        );
        assert_eq!(err.matches("127.0.0.1:9").count(), 1, "{err}");
        assert!(
            err.ends_with("; fix: `cargo xtask status --target docker`"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
