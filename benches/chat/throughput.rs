//! Throughput: the store alone, then `chat.send` floods through the daemon with every agent
//! paused, and the deliveries typed once they are resumed.

use super::*;

pub(super) struct StoreCase {
    pub(super) what: String,
    pub(super) recipients: usize,
    pub(super) messages: u64,
    pub(super) elapsed: Duration,
}

pub(super) fn store_case(what: &str, store: &mut Store, recipients: usize) -> StoreCase {
    let names: Vec<(String, Option<String>)> = (1..=recipients)
        .map(|i| (format!("agent{i}"), Some(format!("%{i}"))))
        .collect();
    let to = if recipients == 1 { "agent1" } else { "all" };
    let start = Instant::now();
    let mut messages = 0;
    while start.elapsed() < STORE_CASE {
        for _ in 0..100 {
            let n = NEXT_N.fetch_add(1, Ordering::Relaxed);
            let m = NewMessage::chat("person", to, &content(n));
            // Held, as the daemon stores them for paused agents in the throughput case.
            store
                .add_message(&m, &names, &|_| true)
                .expect("add a message");
            messages += 1;
        }
    }
    StoreCase {
        what: what.to_string(),
        recipients,
        messages,
        elapsed: start.elapsed(),
    }
}

/// A message's text: about 80 bytes, different every time, one line, typed with `send-keys -l`
/// (no `/`, `@` or `name.ext` that would make the daemon paste it).
pub(super) fn content(n: u64) -> String {
    format!("bench message {n:08}: please look at the parser change and tell me what you think")
}

// ---------------------------------------------------------------------------------------------
// Throughput through the daemon

pub(super) struct Flood {
    pub(super) what: String,
    pub(super) conns: usize,
    pub(super) depth: usize,
    pub(super) rows_per_message: usize,
    pub(super) ok: u64,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) elapsed: Duration,
    /// Round trip of each accepted call (ms).
    pub(super) rtt: Vec<f64>,
    /// CPU of the daemon and of the tmux server, in % of one core.
    pub(super) cpu: Vec<f64>,
}

/// C connections, each with D `chat.send` calls in flight, for `dur`.
pub(super) async fn flood(
    socket: &Path,
    what: &str,
    conns: usize,
    depth: usize,
    dur: Duration,
    direct_to: Option<Arc<Vec<String>>>,
    pids: &[u32],
) -> Flood {
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(ApiClient::connect(socket).await.expect("connect"));
    }
    let meter = CpuMeter::start(pids);
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for c in &clients {
        for _ in 0..depth {
            let caller: Caller = c.caller();
            let to = direct_to.clone();
            tasks.push(tokio::spawn(async move {
                let mut rtt = Vec::new();
                let (mut errors, mut first_error, mut last) = (0u64, None, Instant::now());
                while Instant::now() < deadline {
                    let n = NEXT_N.fetch_add(1, Ordering::Relaxed);
                    let params = match &to {
                        Some(names) => {
                            json!({"to": names[n as usize % names.len()], "content": content(n)})
                        }
                        None => json!({"to": "all", "content": content(n)}),
                    };
                    let t = Instant::now();
                    match caller.call(method::CHAT_SEND, params).await {
                        Ok(_) => rtt.push(ms(t.elapsed())),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                    last = Instant::now();
                }
                (rtt, errors, first_error, last)
            }));
        }
    }
    let mut out = Flood {
        what: what.to_string(),
        conns,
        depth,
        rows_per_message: if direct_to.is_some() { 1 } else { AGENTS },
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        rtt: Vec::new(),
        cpu: Vec::new(),
    };
    let mut end = start;
    for t in tasks {
        let (rtt, errors, first_error, last) = t.await.expect("a sender task");
        out.ok += rtt.len() as u64;
        out.rtt.extend(rtt);
        out.errors += errors;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
        end = end.max(last);
    }
    out.cpu = meter.shares();
    out.elapsed = end - start;
    out
}

pub(super) struct Typing {
    pub(super) held: u64,
    pub(super) resume_call: Duration,
    pub(super) delivered: u64,
    pub(super) other: Vec<String>,
    pub(super) window: Duration,
}

/// Resumes everyone and counts the deliveries typed in `TYPING_WINDOW`.
pub(super) async fn resume_and_type(socket: &Path, held: u64) -> Typing {
    let mut sub = ApiClient::connect(socket).await.expect("connect");
    sub.subscribe(&[event::DELIVERY_UPDATE])
        .await
        .expect("subscribe");
    let caller = sub.caller();
    let t = Instant::now();
    caller
        .call(method::AGENT_RESUME, json!({}))
        .await
        .expect("agent.resume");
    let resume_call = t.elapsed();
    let window_start = Instant::now();
    let deadline = window_start + TYPING_WINDOW;
    let (mut delivered, mut other) = (0, Vec::new());
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline.into(), sub.next_notification()).await
    {
        if n.method != event::DELIVERY_UPDATE {
            other.push(format!("{}: {}", n.method, n.params));
            continue;
        }
        match n.params["status"].as_str() {
            Some("delivered") => delivered += 1,
            Some("queued" | "delivering") => {}
            _ => other.push(n.params.to_string()),
        }
    }
    Typing {
        held,
        resume_call,
        delivered,
        other,
        window: window_start.elapsed(),
    }
}
