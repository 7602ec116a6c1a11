//! How the chat shows what the daemon says: messages, deliveries, agents' states, detected
//! requests and the answers to the person's commands. Text from the daemon (and so from
//! agents' screens) is made safe to print first. No I/O.

use crate::api::protocol::{
    event, AgentInfo, AgentStateEvent, ChatMessage, ChatSendResult, DeliveryStatus,
    DeliveryUpdateEvent, Notification, RequestDetectedEvent,
};

/// Lines of a detected request shown.
const REQUEST_LINES: usize = 8;

/// The `/commands`, for completion.
pub(super) const COMMANDS: &[&str] = &[
    "discuss", "help", "history", "key", "list", "pause", "quit", "resume", "stop",
];

/// The colours names are shown in: each name always gets the same one.
const PALETTE: &[nu_ansi_term::Color] = &[
    nu_ansi_term::Color::LightCyan,
    nu_ansi_term::Color::LightGreen,
    nu_ansi_term::Color::LightYellow,
    nu_ansi_term::Color::LightMagenta,
    nu_ansi_term::Color::LightBlue,
    nu_ansi_term::Color::LightRed,
    nu_ansi_term::Color::Cyan,
    nu_ansi_term::Color::Green,
    nu_ansi_term::Color::Yellow,
    nu_ansi_term::Color::Magenta,
];

/// `name` (already safe to print) in its own colour, when `colour`; the person and `all` in
/// bold.
pub(super) fn paint_name(name: &str, colour: bool) -> String {
    if !colour {
        return name.to_string();
    }
    if name == crate::names::PERSON || name == "all" {
        return nu_ansi_term::Style::new().bold().paint(name).to_string();
    }
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    PALETTE[(hash % PALETTE.len() as u64) as usize]
        .paint(name)
        .to_string()
}

pub(super) fn names_or_nobody(names: &[String]) -> String {
    if names.is_empty() {
        "nobody".into()
    } else {
        names.join(", ")
    }
}

pub(super) fn describe_send(r: &ChatSendResult) -> String {
    let mut s = format!("sent #{} to {}", r.id, clean(&r.to));
    if r.to == "all" {
        s.push_str(&format!(" ({})", names_or_nobody(&r.recipients)));
    }
    if !r.queued.is_empty() {
        s.push_str(&format!("; queued for {}", r.queued.join(", ")));
    }
    s
}

/// The agents as a table (`/list`, `info`).
pub fn describe_agents(agents: &[AgentInfo]) -> String {
    if agents.is_empty() {
        return "no agents".into();
    }
    let w = agents
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = vec![format!(
        "{:<w$}  {:<5}  {:<11}  {:<7}  {:>6}  {:>4}",
        "NAME", "PANE", "PROFILE", "STATE", "QUEUED", "HELD"
    )];
    for a in agents {
        out.push(format!(
            "{:<w$}  {:<5}  {:<11}  {:<7}  {:>6}  {:>4}{}{}",
            clean(&a.name),
            clean(&a.pane),
            clean(&a.profile),
            a.state,
            a.queued,
            a.held,
            if a.paused { "  paused" } else { "" },
            a.replying_to
                .as_deref()
                .map(|m| format!("  reply to {} due", clean(m)))
                .unwrap_or_default()
        ));
    }
    out.join("\n")
}

/// Text from the daemon (and so from agents' screens) made safe to print: no escape sequences
/// or control characters but newline and tab.
fn clean(s: &str) -> String {
    crate::inject::sanitize(s)
}

/// `HH:MM:SS` in local time from an RFC 3339 time; the text itself when it is not one.
fn clock(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%H:%M:%S")
            .to_string(),
        Err(_) => clean(ts).chars().take(19).collect(),
    }
}

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Continuation lines are indented under the text.
fn indent_rest(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

/// `12:00:01 codex → person: text`
pub fn format_message(m: &ChatMessage) -> String {
    format_message_in(m, false)
}

/// [`format_message`], with the names in their colours when `colour`.
pub fn format_message_in(m: &ChatMessage, colour: bool) -> String {
    format!(
        "{} {} → {}{}{}: {}",
        clock(&m.ts),
        paint_name(&clean(&m.from), colour),
        paint_name(&clean(&m.to), colour),
        if m.urgent { " (urgent)" } else { "" },
        if m.in_reply_to.is_some() {
            " (reply)"
        } else {
            ""
        },
        indent_rest(&short_form(&clean(&m.content), m.in_reply_to.is_some()))
    )
}

/// Replies longer than this many lines show their first lines; the store keeps them whole.
const REPLY_LINES: usize = 15;

fn short_form(text: &str, reply: bool) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if !reply || lines.len() <= REPLY_LINES {
        return text.to_string();
    }
    let shown = REPLY_LINES - 3;
    format!(
        "{}\n… {} more lines (the whole reply: chat.history, MCP read_messages)",
        lines[..shown].join("\n"),
        lines.len() - shown
    )
}

/// How a notification other than `chat.message` is shown; `None` for what is not shown.
pub fn render_event(n: &Notification) -> Option<String> {
    render_event_in(n, false)
}

/// [`render_event`], with the names in their colours when `colour`.
pub fn render_event_in(n: &Notification, colour: bool) -> Option<String> {
    let name = |s: &str| paint_name(&clean(s), colour);
    match n.method.as_str() {
        event::DELIVERY_UPDATE => {
            let d: DeliveryUpdateEvent = n.parse().ok()?;
            if d.status == DeliveryStatus::Delivering {
                return None;
            }
            let detail = d
                .detail
                .map(|s| format!(" ({})", clean(&s)))
                .unwrap_or_default();
            Some(format!(
                "         ↳ #{} {}: {}{detail}",
                clean(&d.message_id),
                name(&d.recipient),
                d.status
            ))
        }
        event::AGENT_STATE => {
            let s: AgentStateEvent = n.parse().ok()?;
            Some(format!("{} · {} is {}", now(), name(&s.name), s.state))
        }
        event::REQUEST_DETECTED => {
            let r: RequestDetectedEvent = n.parse().ok()?;
            let text = clean(&r.text);
            let lines: Vec<&str> = text.lines().collect();
            let mut shown = lines
                .iter()
                .take(REQUEST_LINES)
                .copied()
                .collect::<Vec<_>>()
                .join("\n    ");
            if lines.len() > REQUEST_LINES {
                shown.push_str(&format!(
                    "\n    … ({} more lines)",
                    lines.len() - REQUEST_LINES
                ));
            }
            Some(format!(
                "{} ? {} asks ({} #{}): {shown}",
                now(),
                name(&r.agent),
                clean(&r.kind),
                clean(&r.id)
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reply_shows_its_start_and_says_the_rest_is_kept() {
        let long: Vec<String> = (1..=40).map(|i| format!("line {i}")).collect();
        let m = ChatMessage {
            id: "m-1".into(),
            ts: "2026-01-02T03:04:05Z".into(),
            from: "codex".into(),
            to: "person".into(),
            content: long.join("\n"),
            urgent: false,
            meta: None,
            in_reply_to: Some("m-0".into()),
            deliveries: vec![],
        };
        let s = format_message(&m);
        assert!(s.contains("codex → person (reply): line 1\n"), "{s}");
        assert!(s.contains("line 12\n") && !s.contains("line 13"), "{s}");
        assert!(
            s.ends_with("… 28 more lines (the whole reply: chat.history, MCP read_messages)"),
            "{s}"
        );
        // A message that is not a reply is shown whole.
        let m = ChatMessage {
            in_reply_to: None,
            ..m
        };
        assert!(format_message(&m).contains("line 40"));
    }

    #[test]
    fn incoming_text_cannot_move_the_cursor() {
        let m = ChatMessage {
            id: "7".into(),
            ts: "2026-01-02T03:04:05Z".into(),
            from: "codex".into(),
            to: "person".into(),
            content: "line one\x1b[2J\nline two\x07".into(),
            urgent: true,
            meta: None,
            in_reply_to: None,
            deliveries: vec![],
        };
        let s = format_message(&m);
        assert!(!s.contains('\x1b') && !s.contains('\x07'), "{s:?}");
        assert!(
            s.ends_with("codex → person (urgent): line one\n    line two"),
            "{s:?}"
        );
        let d = Notification::new(
            event::DELIVERY_UPDATE,
            serde_json::json!({"message_id":"7","recipient":"codex","status":"queued","detail":"busy"}),
        );
        assert_eq!(
            render_event(&d).unwrap(),
            "         ↳ #7 codex: queued (busy)"
        );
    }
}
