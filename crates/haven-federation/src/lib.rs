//! Compute-to-data across Haven sites (`haven federation`).
//!
//! A multi-site permit joins several sites, each a Haven of its own under its own data access
//! body. A researcher at the requesting site creates an [`AnalysisTask`] in their workspace;
//! the requesting site's [`hub`] offers it to each data site. Each data site's [`agent`] pulls
//! (nothing at a data site listens for another site), checks the task against its own permit,
//! runs it as a Job in a workspace of its own beside its extracts, sends the outputs through
//! its own airlock, and pushes back only the package its own output checkers approved. The
//! hub lands each package read-only in the researcher's workspace.
//!
//! [`AnalysisTask`]: haven_api::AnalysisTask
#![forbid(unsafe_code)]

pub mod agent;
mod audit;
pub mod config;
pub mod hub;
mod peer;
mod server;
pub mod wire;

pub use config::FederationArgs;
pub use server::run;
