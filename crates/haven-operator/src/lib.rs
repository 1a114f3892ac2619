//! Haven's controllers. Each follows one pipeline: fetch referenced objects, validate (pure),
//! build the desired children (pure), apply (server-side apply, one field manager), status.
#![forbid(unsafe_code)]

pub mod airlock;
pub mod anchor;
pub mod applied;
pub mod clock;
pub mod conditions;
pub mod config;
pub mod context;
pub mod error;
mod fanout;
pub mod health;
mod kubeapi;
pub mod leader;
pub mod metrics;
pub mod permit;
pub mod run;
pub mod workspace;
