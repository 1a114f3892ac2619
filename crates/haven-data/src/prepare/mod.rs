//! Dataset preparation (DESIGN §5): the raw source CSV in, a minimised and pseudonymised
//! extract out. Only permitted columns survive; each is kept, dropped, suppressed, keyed-HMAC
//! pseudonymised, date-generalised, truncated or banded; k-anonymity over the declared
//! quasi-identifiers is measured and optionally enforced by suppressing rows; and a report
//! records hashes of input, output, rules and key.
//!
//! Everything streams with bounded memory and fails closed: a value a rule cannot handle
//! stops the preparation with an error naming the dataset, column and row, and never passes
//! through raw.

mod engine;
mod error;
mod extract;
mod generalise;
mod guard;
mod pipeline;
mod plan;
mod report;
mod sink;
mod source;
mod spec;
mod stats;
mod stream;
mod transform;

pub use engine::prepare_csv;
pub use error::PrepareError;
pub use extract::{DATA_FILE, REPORT_FILE, prepare_extract, read_extract_report};
pub use guard::MAX_LINE_BYTES;
pub use report::{ColumnReport, HISTOGRAM_BUCKETS, KAnonymityReport, PreparationReport};
pub use spec::{
    BandSpec, ColumnSpec, DateGranularity, GeneraliseDateSpec, HmacSpec, KAnonymityAction, KAnonymitySpec,
    PreparationSpec, RuleKind, TruncateSpec, UnknownColumnPolicy, key_fingerprint, rules_sha256,
};

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod extract_tests;
#[cfg(test)]
mod input_tests;
#[cfg(test)]
mod kanon_tests;
#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod spec_tests;
#[cfg(test)]
mod test_support;
