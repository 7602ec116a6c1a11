//! The core without tmux: events in, effects out, with tokio's paused clock and an in-memory
//! (or temporary) journal.

use std::time::Duration;

use serde_json::Value;

use super::recovery::{decide, Verdict};
use super::*;
use crate::api::protocol as p;
use crate::detect::PaneState;
use crate::mailbox::{ResponseError, ResponseFile};
use crate::store::{DeliveryStatus, RequestStatus};

fn info(id: u32, label: &str) -> PaneInfo {
    PaneInfo {
        id: format!("%{id}"),
        session: "macs".into(),
        window: "@0".into(),
        window_index: 0,
        pane_index: id,
        width: 120,
        height: 40,
        pid: 100 + id,
        dead: false,
        alternate_on: false,
        cursor_x: 0,
        cursor_y: 0,
        current_command: "macs-bridge".into(),
        label: Some(label.into()),
        profile: None,
        window_name: "macs".into(),
        title: label.into(),
        active: id == 0,
        window_active: true,
        in_mode: false,
    }
}

fn look(state: PaneState, prompt: Option<&str>) -> Look {
    Look {
        state,
        reason: "test".into(),
        profile: "sim".into(),
        lines: Vec::new(),
        prompt_input: prompt.map(str::to_string),
    }
}

fn seen(pane: u32, state: PaneState, prompt: Option<&str>, lines: &[&str]) -> Event {
    let mut look = look(state, prompt);
    look.lines = lines.iter().map(|l| l.to_string()).collect();
    Event::Seen(PaneSeen {
        pane: PaneId(pane),
        look,
        lines: lines.iter().map(|l| l.to_string()).collect(),
        starts: 0,
    })
}

/// The first event, for a session with these panes.
fn start_event(panes: Vec<PaneInfo>) -> Event {
    Event::Start {
        panes,
        pinned: None,
        files: Vec::new(),
        server: "1 1".into(),
    }
}

fn settings(auto: bool) -> Settings {
    let mut cfg = Config::defaults(std::path::Path::new("/nonexistent-state-dir"));
    cfg.mode = if auto { Mode::Auto } else { Mode::Manual };
    cfg.heuristic = false;
    Settings::from_config(&cfg, false)
}

fn core_with(s: Settings, store: Store) -> Core {
    Core::new(
        s,
        Profiles::builtin(),
        Heuristics::new(&Heuristics::default_phrases()).unwrap(),
        Some(store),
    )
}

/// A core with a worker (%0) and, in auto mode, a controller (%1), started.
struct T {
    core: Core,
}

impl T {
    fn new(s: Settings) -> T {
        T::with_store(s, Store::open_in_memory().unwrap())
    }

    fn with_store(s: Settings, store: Store) -> T {
        let mut t = T {
            core: core_with(s, store),
        };
        t.ev(start_event(vec![info(0, "worker"), info(1, "controller")]));
        t
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn ev(&mut self, e: Event) -> Vec<Effect> {
        self.core.handle(T::now(), e)
    }

    fn store(&self) -> &Store {
        self.core.store().unwrap()
    }
}

fn printed(effects: &[Effect], event: &str) -> Vec<Value> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Print {
                event: ev, fields, ..
            } if *ev == event => Some(fields.clone()),
            _ => None,
        })
        .collect()
}

fn jobs(effects: &[Effect]) -> Vec<Job> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver(j) => Some(j.clone()),
            _ => None,
        })
        .collect()
}

const BLOCK: [&str; 3] = [
    "<<CONTROLLER_REQUEST>>",
    "Should I refactor the parser first?",
    "<<CONTROLLER_REQUEST_END>>",
];

fn response(raw: &str) -> Result<ResponseFile, ResponseError> {
    Ok(ResponseFile {
        raw: raw.into(),
        modified: std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        len: raw.len() as u64,
    })
}

/// Files a request from the worker and returns its id.
fn file_request(t: &mut T) -> String {
    file_request_fx(t).0
}

/// Files a request from the worker; returns its id and the effects.
fn file_request_fx(t: &mut T) -> (String, Vec<Effect>) {
    let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
    let ev = printed(&fx, "request");
    assert_eq!(ev.len(), 1, "{fx:?}");
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::View(View::Inbox(r)) if r.text.contains("refactor"))));
    let id = ev[0]["id"].as_str().unwrap().to_string();
    (id, fx)
}

fn done(t: &mut T, job: Job) -> Vec<Effect> {
    t.ev(Event::Done {
        job,
        result: Ok(Outcome::Delivered {
            key: "Enter".into(),
            evidence: "test".into(),
        }),
    })
}

#[tokio::test(start_paused = true)]
async fn a_request_is_filed_once_and_its_answer_typed_once_the_worker_is_idle() {
    let mut t = T::new(settings(false));
    let id = file_request(&mut t);
    // The same block still on screen: not filed again.
    let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
    assert!(printed(&fx, "request").is_empty());
    assert_eq!(
        t.store().request(&id).unwrap().unwrap().status,
        RequestStatus::Open
    );

    // The worker is busy when the answer comes: it waits, and the person is told.
    t.ev(seen(0, PaneState::Busy, None, &BLOCK));
    let fx = t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Yes, refactor first.\n"),
    });
    assert!(jobs(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(e,
        Effect::ShowQueue { status: Some(s), .. } if s.contains("waiting for idle"))));
    // The same file read again (a second event for one save) is not a second answer.
    t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Yes, refactor first.\n"),
    });

    // Idle: typed, recorded before it goes out.
    let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
    let job = jobs(&fx).pop().expect("a job");
    assert_eq!(
        (job.pane, job.text.as_str()),
        (PaneId(0), "Yes, refactor first.")
    );
    let (d, _) = t.store().delivery(job.delivery).unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivering);
    assert_eq!(d.typed.as_deref(), Some("Yes, refactor first."));
    // Nothing else is typed into that pane while the writer works.
    assert!(jobs(&t.ev(seen(0, PaneState::Idle, None, &BLOCK))).is_empty());

    let fx = done(&mut t, job.clone());
    assert_eq!(printed(&fx, "delivered").len(), 1);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::View(View::Archive { id: i, .. }) if *i == id)));
    let row = t.store().request(&id).unwrap().unwrap();
    assert_eq!(row.status, RequestStatus::Delivered);
    assert_eq!(
        t.store().delivery(job.delivery).unwrap().unwrap().0.status,
        DeliveryStatus::Delivered
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_never_takes_the_same_outbox_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("macs.sqlite3");
    let mut t = T::with_store(settings(false), Store::open(&path).unwrap());
    let id = file_request(&mut t);
    t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Go.\n"),
    });
    drop(t);
    // Restarted before it was typed: the journal has the answer queued; the file is old news.
    let mut t = T::with_store(settings(false), Store::open(&path).unwrap());
    let fx = t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Go.\n"),
    });
    assert!(printed(&fx, "queued").is_empty(), "taken twice: {fx:?}");
    let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
    assert!(printed(&fx, "request").is_empty(), "filed again: {fx:?}");
    let all = jobs(&fx);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].text, "Go.");
}

#[tokio::test(start_paused = true)]
async fn a_restart_writes_the_inbox_view_of_every_request_still_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("macs.sqlite3");
    let mut t = T::with_store(settings(false), Store::open(&path).unwrap());
    let id = file_request(&mut t);
    // Killed after the journal took the request, before its inbox file was written.
    drop(t);
    let mut core = core_with(settings(false), Store::open(&path).unwrap());
    let fx = core.handle(T::now(), start_event(vec![info(0, "worker")]));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::View(View::Inbox(r)) if r.id == id)),
        "{fx:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_chain_goes_from_rules_to_the_controller_one_request_at_a_time_then_falls_back() {
    let mut s = settings(true);
    s.chain = vec![Backend::Rules, Backend::Pane, Backend::Manual];
    s.rules = vec![crate::config::Rule {
        regex: regex::Regex::new("(?i)cache").unwrap(),
        reply: "No cache.".into(),
    }];
    s.timeout = Duration::from_secs(30);
    let mut t = T::new(s);
    t.ev(seen(1, PaneState::Idle, None, &[]));
    // A first request: no rule matches, the controller (idle) is asked at once.
    let (id1, fx) = file_request_fx(&mut t);
    let prompt = jobs(&fx).pop().expect("the controller is prompted");
    assert_eq!(prompt.pane, PaneId(1));
    assert!(
        prompt.text.contains("refactor the parser"),
        "{}",
        prompt.text
    );
    done(&mut t, prompt);
    // A second request while the controller works: it waits its turn.
    let fx = t.ev(seen(
        0,
        PaneState::Idle,
        None,
        &[
            "<<CONTROLLER_REQUEST>>",
            "Which port?",
            "<<CONTROLLER_REQUEST_END>>",
        ],
    ));
    let id2 = printed(&fx, "request")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fx = t.ev(seen(1, PaneState::Busy, None, &[]));
    assert!(
        jobs(&fx).is_empty(),
        "a second prompt while the first is open"
    );
    // The controller answers the first.
    let fx = t.ev(seen(
        1,
        PaneState::Idle,
        None,
        &[
            "<<CONTROLLER_RESPONSE>>",
            "WORKER INSTRUCTIONS:",
            "Refactor first.",
            "NOTES:",
            "secret",
            "<<CONTROLLER_RESPONSE_END>>",
        ],
    ));
    assert_eq!(printed(&fx, "answer")[0]["id"], id1.as_str());
    let row = t.store().request(&id1).unwrap().unwrap();
    assert_eq!(
        (
            row.status,
            row.answer.as_deref(),
            row.answered_by.as_deref()
        ),
        (
            RequestStatus::Answered,
            Some("Refactor first."),
            Some("pane")
        )
    );
    // Now the second is asked; the controller stays silent past the timeout.
    let prompts: Vec<Job> = jobs(&fx)
        .into_iter()
        .filter(|j| j.pane == PaneId(1))
        .collect();
    assert_eq!(prompts.len(), 1);
    assert!(prompts[0].text.contains("Which port?"));
    done(&mut t, prompts[0].clone());
    // The runner arms its one timer for the controller's timeout.
    assert_eq!(
        t.core.next_deadline(),
        Some(T::now() + Duration::from_secs(30))
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    let fx = t.ev(Event::Tick);
    assert_eq!(t.core.next_deadline(), None);
    assert_eq!(printed(&fx, "no-answer")[0]["id"], id2.as_str());
    assert_eq!(printed(&fx, "fallback")[0]["id"], id2.as_str());
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::View(View::InboxNote { id, .. }) if *id == id2)));
    let row = t.store().request(&id2).unwrap().unwrap();
    assert_eq!(row.status, RequestStatus::Fallback);
    assert!(
        row.trail.iter().any(|s| s.contains("did not answer")),
        "{:?}",
        row.trail
    );
}

#[tokio::test(start_paused = true)]
async fn a_rule_answers_at_once_and_a_late_person_does_not_replace_a_typed_answer() {
    let mut s = settings(true);
    s.chain = vec![Backend::Rules, Backend::Manual];
    s.rules = vec![crate::config::Rule {
        regex: regex::Regex::new("(?i)refactor").unwrap(),
        reply: "Rules say yes.".into(),
    }];
    let mut t = T::new(s);
    // The worker is idle when the rule answers: typed at once.
    let (id, fx) = file_request_fx(&mut t);
    let job = jobs(&fx).pop().expect("typed");
    assert_eq!(job.text, "Rules say yes.");
    // A person's file arrives while it is being typed: not sent again.
    let fx = t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Mine.\n"),
    });
    assert!(printed(&fx, "queued").is_empty());
    done(&mut t, job);
    // After delivery the same request cannot be answered again.
    let fx = t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Mine, saved again.\n"),
    });
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::View(View::Error { text, .. }) if text.contains("already"))));
}

#[test]
fn recovery_decides_from_the_stage_and_the_prompt() {
    let text = "Yes, refactor the parser first.";
    let idle = |p: Option<&str>| look(PaneState::Idle, p);
    // Before the submit key: nothing was submitted.
    assert_eq!(decide(None, text, &idle(None)), Verdict::Type);
    assert_eq!(
        decide(None, text, &idle(Some("Yes, refac"))),
        Verdict::Retype
    );
    assert_eq!(
        decide(Some(Stage::Text), text, &idle(Some(text))),
        Verdict::Submit
    );
    assert_eq!(
        decide(Some(Stage::Text), text, &idle(Some("a person's line"))),
        Verdict::Wait("the prompt holds someone's text")
    );
    assert!(matches!(
        decide(None, text, &look(PaneState::Busy, None)),
        Verdict::Wait(_)
    ));
    // After the submit key: an empty prompt or a working pane means it was taken.
    assert!(matches!(
        decide(Some(Stage::Submit), text, &idle(None)),
        Verdict::Taken(_)
    ));
    assert!(matches!(
        decide(Some(Stage::Submit), text, &look(PaneState::Busy, None)),
        Verdict::Taken(_)
    ));
    assert_eq!(
        decide(Some(Stage::Submit), text, &idle(Some(text))),
        Verdict::Submit
    );
    // A paste collapsed by the agent counts as the whole text.
    assert_eq!(
        decide(
            Some(Stage::Text),
            "a\nb\nc\nd",
            &idle(Some("[Pasted text #1 +3 lines]"))
        ),
        Verdict::Submit
    );
}

#[tokio::test(start_paused = true)]
async fn a_half_typed_row_is_cleared_and_typed_again_after_a_restart_and_a_submitted_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("macs.sqlite3");
    let mut t = T::with_store(settings(false), Store::open(&path).unwrap());
    let id = file_request(&mut t);
    let fx = t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Refactor the parser first, then the tests.\n"),
    });
    let job = jobs(&fx).pop().expect("typed at once into the idle worker");
    drop(t); // killed while typing: the row is `delivering`, no stage

    let mut t = T::with_store(settings(false), Store::open(&path).unwrap());
    // The prompt holds half of it.
    let fx = t.ev(seen(0, PaneState::Idle, Some("Refactor the pars"), &BLOCK));
    let again = jobs(&fx).pop().expect("typed again");
    assert_eq!(again.delivery, job.delivery);
    assert!(matches!(again.how, How::Retype { .. }), "{:?}", again.how);
    assert_eq!(again.text, job.text);
    // The writer announces the submit key; killed again right after it.
    let fx = t.ev(Event::Stage {
        delivery: again.delivery,
        stage: Stage::Submit,
        ack: 7,
    });
    assert!(matches!(fx[..], [Effect::Ack(7)]));
    drop(t);

    let mut t = T::with_store(settings(false), Store::open(&path).unwrap());
    // The prompt is empty: the key was taken. Recorded, not typed a third time.
    let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
    assert!(jobs(&fx).is_empty(), "{fx:?}");
    assert_eq!(printed(&fx, "recovered").len(), 1);
    assert_eq!(
        t.store().request(&id).unwrap().unwrap().status,
        RequestStatus::Delivered
    );
    let (d, _) = t.store().delivery(job.delivery).unwrap().unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
}

fn chat_core() -> T {
    let mut t = T::new(settings(false));
    t.ev(Event::Panes(vec![
        info(0, "worker"),
        info(2, "a1"),
        info(3, "a2"),
    ]));
    t.ev(seen(2, PaneState::Idle, None, &[]));
    t.ev(seen(3, PaneState::Busy, None, &[]));
    t
}

/// The person pauses (or resumes) an agent.
fn pause(t: &mut T, name: &str, on: bool) -> Vec<Effect> {
    let a = p::AgentNameParams {
        name: Some(name.into()),
    };
    t.ev(Event::Call {
        call: 1,
        conn: 1,
        agent: None,
        request: if on {
            Request::Pause(a)
        } else {
            Request::Resume(a)
        },
    })
}

fn send(t: &mut T, conn: u64, content: &str) -> Vec<Effect> {
    t.ev(Event::Call {
        call: 1,
        conn,
        agent: None,
        request: Request::ChatSend(p::ChatSendParams {
            content: content.into(),
            ..Default::default()
        }),
    })
}

fn reply(fx: &[Effect]) -> &Result<Value, crate::api::protocol::RpcError> {
    fx.iter()
        .find_map(|e| match e {
            Effect::Reply { result, .. } => Some(result),
            _ => None,
        })
        .expect("a reply")
}

#[tokio::test(start_paused = true)]
async fn chat_queues_for_busy_agents_urgent_goes_first_and_keys_are_the_persons() {
    let mut t = chat_core();
    let fx = send(&mut t, 1, "@a2 first");
    let r = reply(&fx).as_ref().unwrap();
    assert_eq!(r["queued"], serde_json::json!(["a2"]));
    // The reply comes before any typing.
    assert!(matches!(fx[0], Effect::Reply { .. }));
    send(&mut t, 1, "@a2 second");
    // Urgent text goes into the busy agent at once, before the others.
    let fx = send(&mut t, 1, "@a2 !stop now");
    let j = jobs(&fx).pop().expect("urgent typed while busy");
    assert!(j.urgent && j.text.ends_with("stop now"), "{j:?}");
    done(&mut t, j);
    let fx = t.ev(seen(3, PaneState::Idle, None, &[]));
    let j = jobs(&fx).pop().expect("then the queue, in order");
    assert_eq!(j.text, "[from person] first");

    // An agent (a connection that said hello as a1) may not send keys or urgent text.
    t.ev(Event::Call {
        call: 2,
        conn: 9,
        agent: None,
        request: Request::Hello(p::HelloParams { name: "a1".into() }),
    });
    let fx = send(&mut t, 9, "@a2 !C-c");
    assert!(reply(&fx).is_err());
    let fx = send(&mut t, 9, "@a2 !urgent");
    assert!(reply(&fx).is_err());
}

#[tokio::test(start_paused = true)]
async fn pause_holds_messages_in_the_journal_and_resume_sends_them_in_order() {
    let mut t = chat_core();
    pause(&mut t, "a1", true);
    let fx = send(&mut t, 1, "@a1 one");
    assert!(jobs(&fx).is_empty());
    send(&mut t, 1, "@a1 two");
    let list = t.core.agents_list();
    let a1 = list.agents.iter().find(|a| a.name == "a1").unwrap();
    assert_eq!((a1.paused, a1.queued), (true, 2));
    let fx = pause(&mut t, "a1", false);
    let j = jobs(&fx).pop().expect("resumed");
    assert_eq!(j.text, "[from person] one");
}

#[tokio::test(start_paused = true)]
async fn an_ask_waits_for_its_answer_and_gets_pending_when_time_is_up() {
    let mut t = T::new(settings(false));
    let ask = |q: &str, wait: u64| Event::Call {
        call: 5,
        conn: 1,
        agent: None,
        request: Request::Ask(p::RequestAskParams {
            from: "claude".into(),
            question: q.into(),
            wait_seconds: Some(wait),
        }),
    };
    let fx = t.ev(ask("Which database?", 10));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Reply { .. })));
    let id = printed(&fx, "request")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fx = t.ev(Event::Outbox {
        id: id.clone(),
        read: response("Postgres.\n"),
    });
    let r = reply(&fx).as_ref().unwrap();
    assert_eq!(
        (r["status"].as_str(), r["answer"].as_str()),
        (Some("answered"), Some("Postgres."))
    );
    // Never typed into a pane; archived at once.
    assert!(jobs(&fx).is_empty());
    // A second ask with nobody answering: "pending" when its time is up.
    assert_eq!(t.core.next_deadline(), None);
    t.ev(ask("Which port?", 3));
    assert_eq!(
        t.core.next_deadline(),
        Some(T::now() + Duration::from_secs(3))
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    let fx = t.ev(Event::Tick);
    assert_eq!(reply(&fx).as_ref().unwrap()["status"], "pending");
    assert_eq!(t.core.next_deadline(), None);
}

#[test]
fn targets_resolve_purely_and_never_to_another_pane() {
    use super::agents::resolve;
    let panes: std::collections::BTreeMap<PaneId, PaneInfo> =
        [info(0, "worker"), info(1, "controller")]
            .into_iter()
            .map(|i| (i.pane_id(), i))
            .collect();
    assert_eq!(resolve(&panes, "macs", "%1"), Ok(PaneId(1)));
    assert_eq!(resolve(&panes, "macs", "worker"), Ok(PaneId(0)));
    assert_eq!(resolve(&panes, "macs", "WORKER"), Ok(PaneId(0)));
    assert_eq!(resolve(&panes, "macs", "macs:0.1"), Ok(PaneId(1)));
    assert_eq!(resolve(&panes, "macs", "0.0"), Ok(PaneId(0)));
    for bad in ["%7", "macs:0.7", "other:0.0", "macs:9.9", "nobody"] {
        assert!(resolve(&panes, "macs", bad).is_err(), "{bad} resolved");
    }
}

#[test]
fn the_default_chain_ends_with_the_person() {
    let cfg = || Config::defaults(std::path::Path::new("."));
    assert_eq!(
        backends::chain(&cfg()),
        vec![Backend::Pane, Backend::Manual]
    );
    let mut c = cfg();
    c.controller_cmd = "bot".into();
    c.rules = vec![crate::config::Rule {
        regex: regex::Regex::new("x").unwrap(),
        reply: "y".into(),
    }];
    assert_eq!(
        backends::chain(&c),
        vec![Backend::Rules, Backend::Exec, Backend::Manual]
    );
    c.controller_backends = vec!["exec".into(), "manual".into(), "pane".into()];
    assert_eq!(backends::chain(&c), vec![Backend::Exec, Backend::Manual]);
    c.controller_backends = vec!["codex-interactive".into()];
    assert_eq!(backends::chain(&c), vec![Backend::Pane, Backend::Manual]);
}

#[tokio::test(start_paused = true)]
async fn a_connection_from_an_agents_pane_is_that_agent_whatever_it_says() {
    let mut t = chat_core();
    let call = |agent: Option<&str>, request: Request| Event::Call {
        call: 3,
        conn: 4,
        agent: agent.map(str::to_string),
        request,
    };
    let send = |from: Option<&str>, content: &str| {
        Request::ChatSend(p::ChatSendParams {
            from: from.map(str::to_string),
            content: content.into(),
            ..Default::default()
        })
    };
    // From a1's pane: as the person, as a2, a key, urgent text, a pause: all refused.
    for request in [
        send(Some("person"), "@a2 hi"),
        send(Some("a2"), "@a1 hi"),
        send(None, "@a2 !C-c"),
        send(None, "@a2 !now"),
        Request::Hello(p::HelloParams {
            name: "person".into(),
        }),
        Request::Pause(p::AgentNameParams { name: None }),
        Request::Key(p::AgentKeyParams {
            name: "a2".into(),
            key: "C-c".into(),
        }),
    ] {
        let fx = t.ev(call(Some("a1"), request.clone()));
        let e = reply(&fx).as_ref().expect_err("refused");
        assert_eq!(e.code, p::code::FORBIDDEN, "{request:?}: {e:?}");
    }
    // As itself, it may send; the message is from a1.
    let fx = t.ev(call(Some("a1"), send(None, "@a2 hello")));
    assert!(reply(&fx).is_ok());
    let last = t
        .store()
        .history(&crate::store::HistoryQuery::default())
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.message.from.as_str(), last.message.content.as_str()),
        ("a1", "hello")
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_question_answered_automatically_twice_goes_to_the_person_the_third_time() {
    let mut s = settings(true);
    s.chain = vec![Backend::Rules, Backend::Manual];
    s.rules = vec![crate::config::Rule {
        regex: regex::Regex::new("(?s).").unwrap(),
        reply: "Go on.".into(),
    }];
    let mut t = T::new(s);
    let mut typed = 0;
    let mut guarded = Vec::new();
    for _ in 0..3 {
        // A new turn that ends with the same question.
        t.ev(seen(0, PaneState::Busy, None, &[]));
        let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
        for j in jobs(&fx) {
            typed += 1;
            done(&mut t, j);
        }
        guarded.extend(printed(&fx, "guard"));
        assert_eq!(printed(&fx, "request").len(), 1, "{fx:?}");
    }
    assert_eq!(typed, 2, "answered automatically more than twice");
    assert_eq!(guarded.len(), 1);
    let id = guarded[0]["id"].as_str().unwrap();
    let row = t.store().request(id).unwrap().unwrap();
    assert_eq!(row.status, RequestStatus::Fallback);
    assert!(
        row.trail.iter().any(|s| s.contains("loop guard")),
        "{:?}",
        row.trail
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_queued_for_an_unlabelled_worker_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("macs.sqlite3");
    let mut worker = info(0, "x");
    worker.label = None;
    worker.window_name = "worker".into();
    worker.title = "bash".into();
    let start = |core: &mut Core| core.handle(T::now(), start_event(vec![worker.clone()]));
    let mut core = core_with(settings(false), Store::open(&path).unwrap());
    start(&mut core);
    let fx = core.handle(T::now(), seen(0, PaneState::Idle, None, &BLOCK));
    let id = printed(&fx, "request")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    core.handle(T::now(), seen(0, PaneState::Busy, None, &BLOCK));
    core.handle(
        T::now(),
        Event::Outbox {
            id: id.clone(),
            read: response("Later.\n"),
        },
    );
    drop(core); // stopped while the worker was busy: the answer waits in the journal
    let mut core = core_with(settings(false), Store::open(&path).unwrap());
    start(&mut core);
    let fx = core.handle(T::now(), seen(0, PaneState::Idle, None, &BLOCK));
    let typed: Vec<String> = jobs(&fx).into_iter().map(|j| j.text).collect();
    assert_eq!(typed, ["Later."]);
}

#[tokio::test(start_paused = true)]
async fn a_late_controller_answer_after_the_persons_is_not_typed() {
    let mut s = settings(true);
    s.chain = vec![Backend::Pane, Backend::Manual];
    let mut t = T::new(s);
    t.ev(seen(1, PaneState::Idle, None, &[]));
    let (id, fx) = file_request_fx(&mut t);
    let prompt = jobs(&fx).pop().expect("the controller is asked");
    done(&mut t, prompt);
    t.ev(seen(0, PaneState::Busy, None, &BLOCK));
    // The person answers first.
    t.ev(Event::Outbox {
        id: id.clone(),
        read: response("The person's answer.\n"),
    });
    let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
    let j = jobs(&fx).pop().expect("the person's answer is typed");
    assert_eq!(j.text, "The person's answer.");
    done(&mut t, j);
    // Then the controller answers too: not a second answer.
    let fx = t.ev(seen(
        1,
        PaneState::Idle,
        None,
        &[
            "<<CONTROLLER_RESPONSE>>",
            "The controller's answer.",
            "<<CONTROLLER_RESPONSE_END>>",
        ],
    ));
    assert!(jobs(&fx).iter().all(|j| j.pane != PaneId(0)), "{fx:?}");
    let fx = t.ev(seen(0, PaneState::Idle, None, &BLOCK));
    assert!(jobs(&fx).is_empty(), "typed a second answer: {fx:?}");
}

#[tokio::test(start_paused = true)]
async fn a_key_reaches_a_paused_agent() {
    let mut t = chat_core();
    pause(&mut t, "a1", true);
    let fx = send(&mut t, 1, "@a1 !C-c");
    let j = jobs(&fx).pop().expect("the key goes");
    assert!(matches!(j.how, How::Key(_)), "{j:?}");
}

#[tokio::test(start_paused = true)]
async fn a_writer_that_fails_midway_is_settled_by_looking_not_retyped() {
    let mut t = chat_core();
    let fx = send(&mut t, 1, "@a1 hello there");
    let job = jobs(&fx).pop().expect("typed");
    t.ev(Event::Stage {
        delivery: job.delivery,
        stage: Stage::Text,
        ack: 1,
    });
    let fx = t.ev(Event::Done {
        job: job.clone(),
        result: Err(InjectError::Client(
            crate::tmux::client::ClientError::Detached,
        )),
    });
    assert!(jobs(&fx).is_empty(), "retyped on a guess: {fx:?}");
    // The text is in the prompt: it is submitted, not typed again.
    let fx = t.ev(seen(2, PaneState::Idle, Some(&job.text), &[]));
    let again = jobs(&fx).pop().expect("settled");
    assert_eq!(
        (again.delivery, again.how.clone()),
        (job.delivery, How::Submit)
    );
}

#[tokio::test(start_paused = true)]
async fn agents_answering_agents_are_held_for_the_person_beyond_the_hop_limit() {
    let mut t = chat_core();
    t.ev(seen(3, PaneState::Idle, None, &[]));
    // The person starts it: hop 0.
    let fx = send(&mut t, 1, "@a1 go");
    done(&mut t, jobs(&fx).pop().expect("typed"));
    // a1 and a2 answer each other with message blocks, each one hop further.
    let mut held = Vec::new();
    let mut typed = 0;
    for round in 0..8 {
        let (from, to, pane) = if round % 2 == 0 {
            ("a1", "a2", 2)
        } else {
            ("a2", "a1", 3)
        };
        let block = [
            format!("<<MESSAGE to={to}>>"),
            format!("reply {round}"),
            "<<MESSAGE_END>>".to_string(),
        ];
        let lines: Vec<&str> = block.iter().map(String::as_str).collect();
        t.ev(seen(pane, PaneState::Busy, None, &[]));
        let fx = t.ev(seen(pane, PaneState::Idle, None, &lines));
        held.extend(printed(&fx, "held"));
        let relayed = jobs(&fx);
        if relayed.is_empty() {
            // Held: the other agent gets nothing, so it has nothing to answer.
            break;
        }
        for j in relayed {
            typed += 1;
            done(&mut t, j);
        }
        let _ = from;
    }
    assert_eq!(typed, 4, "relayed beyond the hop limit");
    assert!(!held.is_empty());
    let list = t.core.agents_list();
    assert!(
        list.agents.iter().any(|a| a.queued > 0),
        "held messages are not counted"
    );
}

fn call_as(t: &mut T, agent: Option<&str>, conn: u64, request: Request) -> Vec<Effect> {
    t.ev(Event::Call {
        call: 9,
        conn,
        agent: agent.map(str::to_string),
        request,
    })
}

/// The message stored last.
fn last_message(t: &T) -> crate::store::Message {
    t.store()
        .history(&crate::store::HistoryQuery::default())
        .unwrap()
        .pop()
        .unwrap()
        .message
}

/// Types the one job in `fx` into its pane, then the agent works and replies with `reply`.
fn agent_replies(t: &mut T, fx: &[Effect], reply: &[&str]) -> Vec<Effect> {
    let js = jobs(fx);
    assert_eq!(js.len(), 1, "{fx:?}");
    let pane = js[0].pane.0;
    done(t, js[0].clone());
    t.ev(seen(pane, PaneState::Busy, None, &[]));
    t.ev(seen(pane, PaneState::Idle, None, reply))
}

#[tokio::test(start_paused = true)]
async fn an_agents_reply_comes_back_to_the_sender_and_is_typed_into_nobody() {
    let mut t = chat_core();
    let fx = send(&mut t, 1, "@a1 what is 2+2?");
    let asked = reply(&fx).as_ref().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fx = agent_replies(
        &mut t,
        &fx,
        &["› [from person] what is 2+2?", "", "• It is 4.", "  Sure."],
    );
    assert!(
        jobs(&fx).is_empty(),
        "the reply is typed into nobody: {fx:?}"
    );
    let r = printed(&fx, "reply");
    assert_eq!(r.len(), 1, "{fx:?}");
    assert_eq!(r[0]["in_reply_to"], asked.as_str());
    let m = last_message(&t);
    assert_eq!((m.from.as_str(), m.to.as_str()), ("a1", "person"));
    assert_eq!(m.content, "It is 4.\nSure.");
    assert_eq!(m.meta["in_reply_to"], asked.as_str());
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Publish { method, params }
        if *method == p::event::CHAT_MESSAGE && params["in_reply_to"] == asked.as_str())));
    // The next turn of a1, not started by anyone, is nobody's reply.
    t.ev(seen(2, PaneState::Busy, None, &[]));
    let fx = t.ev(seen(2, PaneState::Idle, None, &["• On my own."]));
    assert!(printed(&fx, "reply").is_empty());
}

#[tokio::test(start_paused = true)]
async fn handoff_returns_the_reply_and_assign_types_it_into_the_caller() {
    let mut t = chat_core();
    t.ev(seen(3, PaneState::Idle, None, &[]));
    let task = |to: &str, text: &str, wait: Option<u64>| p::TaskParams {
        to: to.into(),
        task: text.into(),
        wait_seconds: wait,
    };
    // a2 hands a task to a1 and waits: no answer until a1's turn ends.
    let fx = call_as(
        &mut t,
        Some("a2"),
        5,
        Request::Handoff(task("a1", "review a.rs", Some(30))),
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Reply { .. })),
        "{fx:?}"
    );
    let fx = agent_replies(&mut t, &fx, &["• a.rs looks fine."]);
    let r = reply(&fx).as_ref().unwrap();
    assert_eq!(r["status"], "replied");
    assert_eq!(r["reply"], "a.rs looks fine.");
    assert!(
        jobs(&fx).is_empty(),
        "handoff replies are not typed: {fx:?}"
    );
    // The same task's status later.
    let id = r["id"].as_str().unwrap().to_string();
    let fx = call_as(
        &mut t,
        Some("a2"),
        5,
        Request::TaskGet(p::TaskGetParams { id }),
    );
    assert_eq!(reply(&fx).as_ref().unwrap()["status"], "replied");

    // a2 assigns; the call returns at once; the reply is typed into a2 once.
    let fx = call_as(
        &mut t,
        Some("a2"),
        5,
        Request::Assign(task("a1", "write tests", None)),
    );
    assert_eq!(reply(&fx).as_ref().unwrap()["status"], "pending");
    let fx = agent_replies(&mut t, &fx, &["• Tests written."]);
    let js = jobs(&fx);
    assert_eq!(js.len(), 1, "{fx:?}");
    assert_eq!(
        (js[0].pane, js[0].text.as_str()),
        (PaneId(3), "[reply from a1] Tests written.")
    );
    // a2's answer to that reply is recorded for a1, and typed into nobody.
    let fx = agent_replies(&mut t, &fx, &["• Thanks."]);
    assert!(jobs(&fx).is_empty(), "{fx:?}");
    assert_eq!(last_message(&t).to, "a1");
}

#[tokio::test(start_paused = true)]
async fn a_handoff_that_waits_too_long_says_pending() {
    let mut t = chat_core();
    let fx = call_as(
        &mut t,
        None,
        5,
        Request::Handoff(p::TaskParams {
            to: "a1".into(),
            task: "slow job".into(),
            wait_seconds: Some(2),
        }),
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::Reply { .. })));
    // The runner is asked to wake the core when the wait runs out.
    assert_eq!(
        t.core.next_deadline(),
        Some(T::now() + Duration::from_secs(2))
    );

    tokio::time::advance(Duration::from_secs(3)).await;
    let fx = t.ev(Event::Tick);
    assert_eq!(reply(&fx).as_ref().unwrap()["status"], "pending");
}

#[tokio::test(start_paused = true)]
async fn a_discussion_relays_each_round_and_stops_after_n() {
    let mut t = chat_core();
    t.ev(seen(3, PaneState::Idle, None, &[]));
    let fx = call_as(
        &mut t,
        None,
        1,
        Request::Discuss(p::DiscussParams {
            content: "tabs or spaces?".into(),
            rounds: 2,
            to: Some(vec!["a2".into(), "a1".into()]),
            round_seconds: None,
        }),
    );
    assert_eq!(
        reply(&fx).as_ref().unwrap()["agents"],
        serde_json::json!(["a1", "a2"])
    );
    let js = jobs(&fx);
    assert_eq!(js.len(), 2, "{fx:?}");
    let mut relays = Vec::new();
    for (j, answer) in js.iter().zip(["• Tabs.", "• Spaces."]) {
        done(&mut t, j.clone());
        t.ev(seen(j.pane.0, PaneState::Busy, None, &[]));
        let fx = t.ev(seen(j.pane.0, PaneState::Idle, None, &[answer]));
        relays.extend(jobs(&fx));
    }
    // Round 2: each gets the other's reply.
    relays.sort_by_key(|j| j.pane);
    let texts: Vec<&str> = relays.iter().map(|j| j.text.as_str()).collect();
    assert_eq!(texts, ["[from a2] Spaces.", "[from a1] Tabs."]);
    let mut after = Vec::new();
    for (j, answer) in relays.iter().zip(["• Fine, spaces.", "• Agreed."]) {
        done(&mut t, j.clone());
        t.ev(seen(j.pane.0, PaneState::Busy, None, &[]));
        let fx = t.ev(seen(j.pane.0, PaneState::Idle, None, &[answer]));
        after.extend(jobs(&fx));
    }
    assert!(
        after.is_empty(),
        "two rounds, then nothing more is relayed: {after:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_ends_a_discussion_and_withdraws_its_relays() {
    let mut t = chat_core();
    // a2 is busy: its round-1 message waits.
    let fx = call_as(
        &mut t,
        None,
        1,
        Request::Discuss(p::DiscussParams {
            content: "plan?".into(),
            rounds: 3,
            to: Some(vec!["a1".into(), "a2".into()]),
            round_seconds: Some(60),
        }),
    );
    assert_eq!(jobs(&fx).len(), 1);
    let fx = call_as(&mut t, None, 1, Request::Stop);
    let r = reply(&fx).as_ref().unwrap();
    assert_eq!(r["withdrawn"], 1, "{r}");
    // a2 goes idle: nothing of the discussion is typed.
    let fx = t.ev(seen(3, PaneState::Idle, None, &[]));
    assert!(jobs(&fx).is_empty(), "{fx:?}");
    // An agent may not start or stop one.
    let fx = call_as(&mut t, Some("a1"), 7, Request::Stop);
    assert_eq!(reply(&fx).as_ref().unwrap_err().code, p::code::FORBIDDEN);
}

#[tokio::test(start_paused = true)]
async fn a_line_the_person_typed_into_a_pane_is_their_message_and_gets_the_reply() {
    let mut t = chat_core();
    t.ev(seen(
        2,
        PaneState::Idle,
        Some("fix the build"),
        &["› fix the build"],
    ));
    let fx = t.ev(seen(2, PaneState::Busy, None, &["› fix the build"]));
    let typed = printed(&fx, "typed");
    assert_eq!(typed.len(), 1, "{fx:?}");
    let m = last_message(&t);
    assert_eq!(
        (m.from.as_str(), m.to.as_str(), m.content.as_str()),
        ("person", "a1", "fix the build")
    );
    let fx = t.ev(seen(
        2,
        PaneState::Idle,
        None,
        &["› fix the build", "• Fixed."],
    ));
    let r = printed(&fx, "reply");
    assert_eq!(r.len(), 1, "{fx:?}");
    assert_eq!(r[0]["in_reply_to"], m.id.as_str());
    // Text the person cleared (not submitted) is nothing, also when the pane works later.
    t.ev(seen(2, PaneState::Idle, Some("oops"), &[]));
    let fx = t.ev(seen(2, PaneState::Idle, None, &[]));
    assert!(printed(&fx, "typed").is_empty());
    tokio::time::advance(Duration::from_secs(6)).await;
    for state in [PaneState::Idle, PaneState::Busy] {
        let fx = t.ev(seen(2, state, None, &[]));
        assert!(printed(&fx, "typed").is_empty(), "{state:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_send_rate_is_a_setting() {
    let mut s = settings(false);
    s.guards.max_rate = 1;
    let mut t = T::new(s);
    t.ev(Event::Panes(vec![
        info(0, "worker"),
        info(2, "a1"),
        info(3, "a2"),
    ]));
    let send = |content: &str| {
        Request::ChatSend(p::ChatSendParams {
            content: content.into(),
            ..Default::default()
        })
    };
    let fx = call_as(&mut t, Some("a1"), 5, send("@a2 one"));
    assert!(printed(&fx, "held").is_empty(), "{fx:?}");
    let fx = call_as(&mut t, Some("a1"), 5, send("@a2 two"));
    let held = printed(&fx, "held");
    assert_eq!(held.len(), 1, "{fx:?}");
    assert!(held[0]["reason"]
        .as_str()
        .unwrap()
        .contains("the limit is 1"));
}

#[tokio::test(start_paused = true)]
async fn input_seen_leaving_the_prompt_in_a_busy_look_ends_one_turn_not_two() {
    let mut s = settings(false);
    s.heuristic = true;
    let mut t = T::new(s);
    t.ev(seen(0, PaneState::Idle, Some("go"), &["› go"]));
    // The look after Enter already shows the pane at work: the turn starts in that look.
    t.ev(seen(0, PaneState::Busy, None, &["› go", "• Working"]));
    let screen = [
        "› go",
        "• I looked at the parser.",
        "• Should I rewrite the tokenizer too?",
    ];
    let fx = t.ev(seen(0, PaneState::Idle, None, &screen));
    assert_eq!(printed(&fx, "request").len(), 1, "{fx:?}");
    // More looks at the same idle screen (the prompt drawn in a second write) are the same turn.
    for _ in 0..3 {
        let fx = t.ev(seen(0, PaneState::Idle, None, &screen));
        assert!(printed(&fx, "request").is_empty(), "{fx:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_half_drawn_frame_showing_an_old_line_in_the_prompt_loses_nothing_and_doubles_nothing() {
    // Seen on Gemini under load: after the person's Enter, half-drawn frames put a row of the
    // transcript (the message the bridge typed earlier, then the person's line) where the
    // prompt is read.
    let mut t = chat_core();
    let fx = send(&mut t, 1, "@a1 analyze this function");
    agent_replies(
        &mut t,
        &fx,
        &[
            "> [from person] analyze this function",
            "✦ It adds two numbers.",
        ],
    );
    let line = "tell me what changed today";
    t.ev(seen(2, PaneState::Idle, Some(line), &[]));
    let mut typed = Vec::new();
    for (state, prompt) in [
        (PaneState::Idle, None),
        (PaneState::Busy, Some("[from person] analyze this function")),
        (PaneState::Busy, None),
        (PaneState::Busy, Some(line)),
        (PaneState::Busy, None),
    ] {
        typed.extend(printed(&t.ev(seen(2, state, prompt, &[])), "typed"));
    }
    assert_eq!(typed.len(), 1, "{typed:?}");
    let fx = t.ev(seen(
        2,
        PaneState::Idle,
        None,
        &["> tell me what changed today", "✦ Nothing changed today."],
    ));
    let r = printed(&fx, "reply");
    assert_eq!(r.len(), 1, "{fx:?}");
    assert_eq!(r[0]["in_reply_to"], typed[0]["id"]);
}
