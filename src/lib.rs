//! macs-bridge: lets AI coding agents running in tmux work together.
//!
//! # Layout
//! - [`tmux`]: the control-mode parser, commands, the client process and one-shot calls.
//! - [`pane`]: the pane registry and a screen model per pane, fed by `%output`.
//! - [`detect`]: agent profiles and the pane state classifier (idle, busy, asking).
//! - [`inject`]: the single keystroke writer: wait for idle, paste or type, submit, verify.
//! - [`config`]: `macs.yaml`, the environment and flags merged into one checked `Config`.
//! - [`tools`]: the pane tools (`snapshot`, `status`, `send`, …) and the live view they share.
//! - [`chatline`]: the chat line grammar (`@name`, `!urgent`, `!C-c`) and chat routes.
//! - [`names`]: names the layers share (the person, the chat pane, the API's pane).
//! - [`up`], [`chat_client`], [`mcp`], [`demo`]: `up`/`down`, `chat`, `mcp` and `demo`.
//! - [`cli`]: the command line: flags, exit codes, errors into messages. Library modules never
//!   import it (the daemon still takes its `Global` flags); they take plain values and return
//!   typed errors.
//!
//! The binary (`src/main.rs`) only parses arguments and turns errors into exit codes.
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod chat_client;
pub mod chatline;
pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod demo;
pub mod detect;
pub mod faults;
pub mod inject;
pub mod mailbox;
pub mod mcp;
pub mod names;
pub mod pane;
pub mod prompts;
pub mod sim;
pub mod store;
pub mod tmux;
pub mod tools;
pub mod tty;
pub mod up;
