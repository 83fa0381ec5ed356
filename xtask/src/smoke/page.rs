//! Reading our own HTML pages: their forms with their fields, and the error a page shows.

/// The text of the page's error message, if it shows one, for failure reports.
pub(crate) fn page_error(page: &str) -> String {
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

pub(crate) fn strip_tags(s: &str) -> String {
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
pub(crate) struct Form {
    pub(crate) action: String,
    pub(crate) method: String,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) start: usize,
}

impl Form {
    pub(crate) fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }
}

pub(crate) fn find_form(page: &str, pred: impl Fn(&Form) -> bool) -> Option<Form> {
    parse_forms(page).into_iter().find(|f| pred(f))
}

/// A forgiving scan of the forms in an HTML page (our own templates, not arbitrary HTML):
/// `<input>`, `<textarea>`, `<select>` and `<button name=… value=…>` with their values.
pub(crate) fn parse_forms(page: &str) -> Vec<Form> {
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
pub(crate) fn attr(tag: &str, name: &str) -> Option<String> {
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

pub(crate) fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
