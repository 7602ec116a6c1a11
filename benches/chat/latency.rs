//! Latency to an idle agent's pane: one message at a time, stamped when `chat.send` answers,
//! when the text shows in the pane (the bench's own control connection), and when the daemon
//! says delivered.

use super::*;

/// The `%output` of `pane` in which `token` shows, from now on, stamped on the bench's clock.
pub(super) fn shown(obs: &Observer, pane: PaneId, token: &str) -> oneshot::Receiver<Instant> {
    let (tx, rx) = oneshot::channel();
    obs.expect(pane, &[token], move |stamp| {
        let _ = tx.send(stamp.at);
    });
    rx
}

// ---------------------------------------------------------------------------------------------
// Latency to an idle agent's pane

#[derive(Default)]
pub(super) struct Latency {
    /// `chat.send` answered (ms).
    pub(super) reply: Vec<f64>,
    /// The text on screen (ms).
    pub(super) shown: Vec<f64>,
    /// `delivery.update` delivered (ms).
    pub(super) delivered: Vec<f64>,
    /// Samples whose `chat.send` answer said the recipient was queued (not typed at once).
    pub(super) queued: usize,
    pub(super) failures: Vec<String>,
    pub(super) tokens: Vec<(usize, String)>,
    pub(super) cpu: Vec<f64>,
}

pub(super) async fn latency(
    socket: &Path,
    obs: &Observer,
    agents: &[Agent],
    samples: usize,
    pids: &[u32],
) -> Latency {
    let mut client = ApiClient::connect(socket).await.expect("connect");
    client
        .subscribe(&[event::DELIVERY_UPDATE, event::AGENT_STATE])
        .await
        .expect("subscribe");
    let caller = client.caller();
    // Stamped as they arrive, consumed in order by the sample loop.
    let (tx, mut notes) = mpsc::unbounded_channel::<(Value, String, Instant)>();
    tokio::spawn(async move {
        while let Some(n) = client.next_notification().await {
            let at = Instant::now();
            if tx.send((n.params, n.method, at)).is_err() {
                break;
            }
        }
    });
    let list = caller
        .call(method::AGENTS_LIST, json!({}))
        .await
        .expect("agents.list");
    let mut state: HashMap<String, String> = list["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["name"].as_str()?.into(), a["state"].as_str()?.into())))
        .collect();
    let apply = |state: &mut HashMap<String, String>, p: &Value, m: &str| {
        if m == event::AGENT_STATE {
            if let (Some(n), Some(s)) = (p["name"].as_str(), p["state"].as_str()) {
                state.insert(n.to_string(), s.to_string());
            }
        }
    };

    let mut out = Latency::default();
    let mut rng = Rng::new();
    let mut meter = None;
    let mut k = 0usize;
    let mut done = 0usize;
    while done < samples && out.failures.len() < MAX_FAILURES {
        if k == WARMUP {
            meter = Some(CpuMeter::start(pids));
        }
        let agent = &agents[k % agents.len()];
        // Only to an agent the daemon last saw idle.
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        while let Ok((p, m, _)) = notes.try_recv() {
            apply(&mut state, &p, &m);
        }
        while state.get(&agent.name).map(String::as_str) != Some("idle") {
            match tokio::time::timeout_at(deadline, notes.recv()).await {
                Ok(Some((p, m, _))) => apply(&mut state, &p, &m),
                Ok(None) => panic!("the daemon closed the API connection"),
                Err(_) => panic!("{} never turned idle", agent.name),
            }
        }
        let token = format!("tok{k:05}x{:06x}", rng.next() & 0xff_ffff);
        let shown = shown(obs, agent.pane, &token);
        let t0 = Instant::now();
        let r = caller
            .call(
                method::CHAT_SEND,
                json!({"to": agent.name, "content": format!("bench ping {token} please ack")}),
            )
            .await;
        let replied = t0.elapsed();
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                out.failures.push(format!("sample {k}: chat.send: {e}"));
                k += 1;
                continue;
            }
        };
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let was_queued = r["queued"].as_array().is_some_and(|q| !q.is_empty());
        let shown = match tokio::time::timeout(STEP_TIMEOUT, shown).await {
            Ok(Ok(at)) => at - t0,
            _ => {
                out.failures.push(format!(
                    "sample {k}: the text never showed in {}",
                    agent.name
                ));
                k += 1;
                continue;
            }
        };
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        let delivered = loop {
            match tokio::time::timeout_at(deadline, notes.recv()).await {
                Ok(Some((p, m, at))) => {
                    apply(&mut state, &p, &m);
                    if m == event::DELIVERY_UPDATE && p["message_id"] == id.as_str() {
                        match p["status"].as_str() {
                            Some("delivered") => break Ok(at - t0),
                            Some("queued" | "delivering") => {}
                            _ => break Err(format!("sample {k}: {p}")),
                        }
                    }
                }
                _ => break Err(format!("sample {k}: no `delivered` for {id}")),
            }
        };
        let delivered = match delivered {
            Ok(d) => d,
            Err(e) => {
                out.failures.push(e);
                k += 1;
                continue;
            }
        };
        if k >= WARMUP {
            out.reply.push(ms(replied));
            out.shown.push(ms(shown));
            out.delivered.push(ms(delivered));
            out.queued += usize::from(was_queued);
            out.tokens.push((k % agents.len(), token));
            done += 1;
        }
        k += 1;
    }
    if let Some(m) = meter {
        out.cpu = m.shares();
    }
    out
}

/// How many times each latency token shows among the inputs the agents logged.
pub(super) fn check_logs(agents: &[Agent], tokens: &[(usize, String)]) -> (usize, usize) {
    let inputs: Vec<String> = agents
        .iter()
        .map(|a| fs::read_to_string(&a.log).unwrap_or_default())
        .collect();
    let mut once = 0;
    let mut wrong = 0;
    for (i, token) in tokens {
        let needle = format!("{token} please ack");
        match inputs[*i].matches(&needle).count() {
            1 => once += 1,
            _ => wrong += 1,
        }
    }
    (once, wrong)
}
