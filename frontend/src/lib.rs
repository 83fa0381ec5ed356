//! Todo service web UI: an axum server that renders HTML with askama templates and talks to the
//! backend's JSON API over HTTP. The binary in `main.rs` only reads configuration and calls
//! [`app::serve`]; tests run the same server in-process.

pub mod app;
pub mod backend;
pub mod client_addr;
pub mod config;
pub mod csrf;
mod error;
pub mod flash;
mod handlers;
pub mod logging;
mod request_timeout;
pub mod security;
pub mod server;
pub mod session;
pub mod state;
pub mod static_files;
pub mod views;
