//! macs-bridge: lets AI coding agents running in tmux work together.
//!
//! # Layout
//! - [`tmux`]: the control-mode parser, commands, the client process and one-shot calls.
//! - [`pane`]: the pane registry and a screen model per pane, fed by `%output`.
//! - [`detect`]: agent profiles and the pane state classifier (idle, busy, asking).
//! - [`inject`]: the single keystroke writer: wait for idle, paste or type, submit, verify.
//! - [`cli`]: the command line and the pane tools.
//! - [`mcp`]: `macs-bridge mcp`, an MCP server over stdio that speaks to the daemon for one agent.
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
pub mod up;
