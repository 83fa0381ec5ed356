//! The assistant panel through its forms, against a real backend with no LLM configured (its
//! built-in interpreter answers "add buy milk" and the like).
#![allow(clippy::unwrap_used)]

mod support;

use support::{Browser, Page, stack, unique_email};

const PASSWORD: &str = "chatty password";

fn task_line<'a>(page: &'a Page, title: &str) -> Option<&'a str> {
    let marker = format!("<span class=\"task-title\">{title}</span>");
    let pos = page.html.find(&marker)?;
    let start = page.html[..pos].rfind("<li class=\"task")?;
    Some(&page.html[start..pos])
}

fn task_id(page: &Page, title: &str) -> String {
    let line =
        task_line(page, title).unwrap_or_else(|| panic!("{title:?} not listed:\n{}", page.html));
    let start = line.find("id=\"task-").unwrap() + "id=\"task-".len();
    line[start..].split('"').next().unwrap().to_owned()
}

fn messages(page: &Page) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = page.html.as_str();
    while let Some(pos) = rest.find("<li class=\"msg msg-") {
        rest = &rest[pos + "<li class=\"msg msg-".len()..];
        let role = rest.split('"').next().unwrap().to_owned();
        let body_start = rest.find('>').unwrap() + 1;
        let body_end = rest.find("</li>").unwrap();
        out.push((role, rest[body_start..body_end].to_owned()));
    }
    out
}

async fn say(browser: &Browser, from: &Page, message: &str) -> Page {
    let page = browser
        .submit(from, "/chat", &[("message", message), ("status", "all")])
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.url.ends_with("/tasks?status=all"), "{}", page.url);
    page
}

#[tokio::test(flavor = "multi_thread")]
async fn the_assistant_changes_tasks_and_the_list_shows_it() {
    let Some(stack) = stack("the_assistant_changes_tasks_and_the_list_shows_it", false).await
    else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let page = browser.sign_up(&unique_email("chat"), PASSWORD).await;
    assert_eq!(messages(&page).len(), 1, "only the greeting");

    let page = say(&browser, &page, "add buy milk").await;
    let id = task_id(&page, "buy milk");
    assert!(
        page.html.contains("Assistant: "),
        "the change is announced:\n{}",
        page.html
    );
    let msgs = messages(&page);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[0], ("user".to_owned(), "add buy milk".to_owned()));
    assert_eq!(msgs[1].0, "assistant");
    assert!(msgs[1].1.contains("buy milk"), "{msgs:?}");
    assert!(browser.cookie("todo_chat").is_some());

    let page = say(&browser, &page, "complete buy milk").await;
    assert!(
        task_line(&page, "buy milk").unwrap().contains("task done"),
        "{}",
        page.html
    );

    let page = say(&browser, &page, &format!("rename {id} to call mom")).await;
    assert!(task_line(&page, "call mom").is_some(), "{}", page.html);
    assert!(task_line(&page, "buy milk").is_none());

    let page = say(&browser, &page, &format!("delete {id}")).await;
    assert!(task_line(&page, "call mom").is_none(), "{}", page.html);
    // The conversation kept every turn.
    assert_eq!(messages(&page).len(), 8, "{:?}", messages(&page));

    // Something it does not understand: a help reply, nothing changed, no announcement.
    let page = say(&browser, &page, "sing me a song").await;
    let last = messages(&page).pop().unwrap();
    assert_eq!(last.0, "assistant");
    assert!(
        last.1.to_lowercase().contains("add"),
        "help names the commands: {last:?}"
    );
    assert!(!page.html.contains("Assistant: "));

    // An empty message is explained, not sent.
    let page = browser
        .submit(&page, "/chat", &[("message", "   "), ("status", "all")])
        .await;
    page.assert_shows("Type a message for the assistant first.");

    // New chat starts over.
    let page = browser
        .submit(&page, "/chat/new", &[("status", "all")])
        .await;
    assert_eq!(messages(&page).len(), 1, "{:?}", messages(&page));
    assert!(browser.cookie("todo_chat").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_conversation_stays_private() {
    let Some(stack) = stack("another_users_conversation_stays_private", false).await else {
        return;
    };
    let alice = Browser::new(&stack.frontend.url);
    let page = alice.sign_up(&unique_email("alice-chat"), PASSWORD).await;
    let page = say(&alice, &page, "add alice private plan").await;
    assert!(task_line(&page, "alice private plan").is_some());
    let conversation = alice.cookie("todo_chat").unwrap();

    let mallory = Browser::new(&stack.frontend.url);
    let page = mallory
        .sign_up(&unique_email("mallory-chat"), PASSWORD)
        .await;
    mallory.jar.add_cookie_str(
        &format!("todo_chat={conversation}; Path=/"),
        &stack.frontend.url.parse().unwrap(),
    );
    let page2 = mallory.get("/tasks").await;
    assert!(!page2.html.contains("alice private plan"), "{}", page2.html);
    assert_eq!(messages(&page2).len(), 1);
    let page = mallory
        .submit(
            &page,
            "/chat",
            &[("message", "list all"), ("status", "all")],
        )
        .await;
    assert!(!page.html.contains("alice private plan"), "{}", page.html);
    page.assert_shows("That conversation no longer exists");
}
