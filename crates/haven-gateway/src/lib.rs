//! `haven gateway`: the one door into Haven's workspaces.
//!
//! A request goes host → session → may this person enter now (the Workspace names them and
//! the API server's RBAC lets them `connect`) → the environment's address → the proxy; each
//! step is a module, and everything the gateway lets in or turns away is a record in its
//! hash-chained access log. See docs/gateway.md.
#![forbid(unsafe_code)]

pub mod activity;
pub mod authz;
pub mod config;
pub mod directory;
pub mod evidence;
pub mod gateway;
pub mod identity;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod pages;
pub mod proxy;
pub mod relay;
pub mod route;
mod server;
pub mod session;
pub mod tes;
pub mod tracker;

pub use config::GatewayArgs;
pub use server::run;
