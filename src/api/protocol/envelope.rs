//! The JSON-RPC 2.0 envelopes: a request line read into a [`Request`] (or a [`Rejection`]
//! that says how to answer), an incoming line on the client's side, and the response,
//! notification and request lines written. No I/O.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{code, JSONRPC};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// -32700: the line is not JSON.
    pub fn parse_error(msg: impl Into<String>) -> Self {
        Self::new(code::PARSE_ERROR, msg)
    }

    /// -32600: not a valid request object.
    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, msg)
    }

    /// -32601.
    pub fn method_not_found(method: &str) -> Self {
        let shown: String = method.chars().take(80).collect();
        Self::new(
            code::METHOD_NOT_FOUND,
            format!("method not found: {shown:?}"),
        )
    }

    /// -32602: the params are wrong; say which and why.
    pub fn invalid_params(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, msg)
    }

    /// -32603.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, msg)
    }

    /// -32001: no agent, pane, message or request by that name or id.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, msg)
    }

    /// -32002: this client may not do that.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(code::FORBIDDEN, msg)
    }

    /// -32003: not now.
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::new(code::UNAVAILABLE, msg)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RpcError {}

/// A notification: a method and its params, no id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub method: String,
    pub params: Value,
}

impl Notification {
    /// A notification with typed params (which always serialize: they are plain structs).
    pub fn new(method: &str, params: impl Serialize) -> Notification {
        Notification {
            method: method.to_string(),
            params: serde_json::to_value(params).unwrap_or(Value::Null),
        }
    }

    /// The params as `T`, or why not.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.params)
    }
}

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `None` for a notification (no `id` member): run, never answered.
    pub id: Option<Value>,
    pub method: String,
    /// Always an object (absent or `null` params become `{}`).
    pub params: Value,
}

/// A line that is not a valid request, with the error to answer and the id to answer it with
/// (`null` when the id could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub id: Value,
    pub error: RpcError,
    /// The line was a notification (it had no id) that is well formed enough to know that: it
    /// gets no answer (JSON-RPC 2.0 §4.1). Parse errors and invalid requests are always answered.
    pub silent: bool,
}

/// Reads one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, Rejection> {
    let reject = |id: Value, error: RpcError| Rejection {
        id,
        error,
        silent: false,
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        reject(
            Value::Null,
            RpcError::parse_error(format!("parse error: {e}")),
        )
    })?;
    let mut obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request(
                    "batch requests are not supported: send one request object per line",
                ),
            ))
        }
        _ => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request("invalid request: expected a JSON object"),
            ))
        }
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::Number(_) | Value::String(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request("invalid request: id must be a string, a number or null"),
            ))
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC) {
        return Err(reject(
            answer_id,
            RpcError::invalid_request("invalid request: \"jsonrpc\" must be \"2.0\""),
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => {
            return Err(reject(
                answer_id,
                RpcError::invalid_request("invalid request: \"method\" must be a string"),
            ))
        }
        None => {
            return Err(reject(
                answer_id,
                RpcError::invalid_request("invalid request: no \"method\""),
            ))
        }
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err(Rejection {
                silent: id.is_none(),
                id: answer_id,
                error: RpcError::invalid_params(
                    "params must be an object: every method takes named params",
                ),
            })
        }
    };
    Ok(Request { id, method, params })
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

#[derive(Serialize)]
struct NotificationOut<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    params: &'a Value,
}

#[derive(Serialize)]
struct RequestOut<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    method: &'a str,
    params: &'a Value,
}

/// A response line (without the newline).
pub fn response_line(id: &Value, outcome: Result<&Value, &RpcError>) -> String {
    let (result, error) = match outcome {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    serde_json::to_string(&ResponseOut {
        jsonrpc: JSONRPC,
        id,
        result,
        error,
    })
    // Serializing a `Value` cannot fail (its keys are strings).
    .unwrap_or_default()
}

/// A notification line (without the newline).
pub fn notification_line(method: &str, params: &Value) -> String {
    serde_json::to_string(&NotificationOut {
        jsonrpc: JSONRPC,
        method,
        params,
    })
    .unwrap_or_default()
}

/// A request line (without the newline); `id: None` makes a notification.
pub fn request_line(id: Option<u64>, method: &str, params: &Value) -> String {
    serde_json::to_string(&RequestOut {
        jsonrpc: JSONRPC,
        id,
        method,
        params,
    })
    .unwrap_or_default()
}

/// What a client reads from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to a call. `id` is `null` when the server could not read the request's id.
    Response {
        id: Value,
        result: Result<Value, RpcError>,
    },
    Notification(Notification),
}

/// Reads one line from the server, or says why it is not a response or a notification.
pub fn parse_incoming(line: &[u8]) -> Result<Incoming, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("not a JSON object".into());
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC) {
        return Err("\"jsonrpc\" is not \"2.0\"".into());
    }
    if let Some(id) = obj.remove("id") {
        if let Some(err) = obj.remove("error") {
            let error: RpcError =
                serde_json::from_value(err).map_err(|e| format!("bad error object: {e}"))?;
            return Ok(Incoming::Response {
                id,
                result: Err(error),
            });
        }
        if let Some(result) = obj.remove("result") {
            return Ok(Incoming::Response {
                id,
                result: Ok(result),
            });
        }
        return Err("a message with an id but neither result nor error".into());
    }
    match obj.remove("method") {
        Some(Value::String(method)) => Ok(Incoming::Notification(Notification {
            method,
            params: obj.remove("params").unwrap_or(Value::Null),
        })),
        _ => Err("neither a response nor a notification".into()),
    }
}

/// The params of a call as `T`; a mismatch is -32602 naming the field.
pub fn params<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::invalid_params(format!("params: {e}")))
}

/// A result value; a struct that cannot be serialized is -32603.
pub fn result<T: Serialize>(result: &T) -> Result<Value, RpcError> {
    serde_json::to_value(result)
        .map_err(|e| RpcError::internal(format!("cannot serialize the result: {e}")))
}

/// Whether `name` may be an agent's or client's name: 1 to 64 ASCII letters, digits, `-`, `_`
/// or `.`, starting with a letter or digit, and not `all` (which addresses everyone).
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && !name.eq_ignore_ascii_case("all")
}
