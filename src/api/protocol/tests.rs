//! Tests of the wire protocol: envelopes, params, results and events.

use super::*;
use serde_json::{json, Value};

fn reject(line: &str) -> Rejection {
    parse_request(line.as_bytes()).unwrap_err()
}

#[test]
fn a_request_with_each_kind_of_id() {
    for id in [json!(1), json!("a-b"), json!(-2.5), Value::Null] {
        let line = json!({"jsonrpc":"2.0","id":id,"method":"m","params":{"a":1}}).to_string();
        let r = parse_request(line.as_bytes()).unwrap();
        assert_eq!(r.id, Some(id));
        assert_eq!(r.method, "m");
        assert_eq!(r.params, json!({"a":1}));
    }
}

#[test]
fn absent_or_null_params_are_an_empty_object_and_no_id_is_a_notification() {
    let r = parse_request(br#"{"jsonrpc":"2.0","method":"m"}"#).unwrap();
    assert_eq!(r.id, None);
    assert_eq!(r.params, json!({}));
    let r = parse_request(br#"{"jsonrpc":"2.0","id":3,"method":"m","params":null}"#).unwrap();
    assert_eq!(r.params, json!({}));
}

#[test]
fn bad_lines_get_the_right_codes() {
    let e = reject("{nope");
    assert_eq!(
        (e.error.code, e.id.clone()),
        (code::PARSE_ERROR, Value::Null)
    );
    let e = reject(r#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#);
    assert_eq!(e.error.code, code::INVALID_REQUEST);
    assert!(e.error.message.contains("batch"), "{}", e.error.message);
    assert_eq!(reject("42").error.code, code::INVALID_REQUEST);
    let e = reject(r#"{"jsonrpc":"1.0","id":7,"method":"m"}"#);
    assert_eq!((e.error.code, e.id), (code::INVALID_REQUEST, json!(7)));
    let e = reject(r#"{"jsonrpc":"2.0","id":"x"}"#);
    assert_eq!((e.error.code, e.id), (code::INVALID_REQUEST, json!("x")));
    let e = reject(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#);
    assert_eq!((e.error.code, e.id), (code::INVALID_REQUEST, Value::Null));
    let e = reject(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1,2]}"#);
    assert_eq!((e.error.code, e.silent), (code::INVALID_PARAMS, false));
    let e = reject(r#"{"jsonrpc":"2.0","method":"m","params":[1,2]}"#);
    assert!(e.silent, "a notification with bad params gets no answer");
}

#[test]
fn lines_round_trip_through_the_client_parser() {
    let ok = response_line(&json!("id-1"), Ok(&json!({"x":1})));
    assert_eq!(
        parse_incoming(ok.as_bytes()).unwrap(),
        Incoming::Response {
            id: json!("id-1"),
            result: Ok(json!({"x":1}))
        }
    );
    let err = RpcError::not_found("no agent \"bob\"").with_data(json!({"known":["a"]}));
    let line = response_line(&json!(9), Err(&err));
    assert_eq!(
        parse_incoming(line.as_bytes()).unwrap(),
        Incoming::Response {
            id: json!(9),
            result: Err(err)
        }
    );
    let n = notification_line("chat.message", &json!({"id":"1"}));
    assert_eq!(
        n,
        r#"{"jsonrpc":"2.0","method":"chat.message","params":{"id":"1"}}"#
    );
    assert!(matches!(
        parse_incoming(n.as_bytes()).unwrap(),
        Incoming::Notification(Notification { ref method, .. }) if method == "chat.message"
    ));
    let req = request_line(Some(4), "hello", &json!({"name":"me"}));
    let r = parse_request(req.as_bytes()).unwrap();
    assert_eq!((r.id, r.method.as_str()), (Some(json!(4)), "hello"));
    let note = request_line(None, "hello", &json!({}));
    assert_eq!(parse_request(note.as_bytes()).unwrap().id, None);
}

#[test]
fn params_name_the_bad_field() {
    let e = params::<ChatSendParams>(json!({"conent":"hi"})).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert!(e.message.contains("conent"), "{}", e.message);
    let p: ChatSendParams = params(json!({"content":"hi","urgent":true})).unwrap();
    assert!(p.urgent && p.to.is_none());
    let e = params::<AgentKeyParams>(json!({"name":"a"})).unwrap_err();
    assert!(e.message.contains("key"), "{}", e.message);
}

#[test]
fn unknown_states_and_statuses_from_a_newer_daemon_are_read() {
    let a: AgentInfo = serde_json::from_value(json!({
        "name":"a","pane":"%1","profile":"codex","state":"sleeping","queued":0,"paused":false,
        "extra":"ignored"
    }))
    .unwrap();
    assert_eq!(a.state, AgentState::Unknown);
    let d: DeliveryUpdateEvent =
        serde_json::from_value(json!({"message_id":"1","recipient":"a","status":"teleported"}))
            .unwrap();
    assert_eq!(d.status, DeliveryStatus::Other);
    assert_eq!(
        serde_json::to_value(AgentState::from(crate::detect::PaneState::Asking)).unwrap(),
        json!("asking")
    );
}

#[test]
fn names() {
    for ok in ["codex", "agent1", "a.b-c_d", "Claude"] {
        assert!(is_valid_name(ok), "{ok}");
    }
    for bad in ["", "all", "ALL", "-x", "a b", "@a", "é", &"x".repeat(65)] {
        assert!(!is_valid_name(bad), "{bad}");
    }
}
