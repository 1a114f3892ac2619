//! `haven airlock check`: the airlock's automated disclosure checks on local files, as the
//! operator runs them on an export request, so a researcher can check outputs before asking.

use std::path::PathBuf;

use anyhow::Context;
use haven_data::disclosure::{self, Check, CheckPolicy, FileChecks, FilePolicy, Thresholds};

/// Run the airlock's disclosure checks on files; print ACRO's results.json.
///
/// Exit status 0 when nothing blocks (disclosure-control failures are for the reviewers, who
/// may approve an exception), 1 when a hard check failed (file policy, row-level data).
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Smallest count a table cell may show.
    #[arg(long, default_value_t = 10)]
    min_cell_count: u32,
    /// N of the N-K dominance rule.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    dominance_n: u32,
    /// K of the N-K dominance rule, in percent.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=100))]
    dominance_k_percent: u32,
    /// p of the p% rule, in percent.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    p_percent: u32,
    /// Fewest residual degrees of freedom a model output may have.
    #[arg(long, default_value_t = 10)]
    min_degrees_of_freedom: u32,
    /// Extensions that may leave, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "csv,txt,md,pdf,png,json")]
    allowed_file_types: Vec<String>,
    /// Largest file that may leave: bytes, or a Kubernetes quantity such as 10Mi.
    #[arg(long, default_value = "10Mi", value_parser = parse_size)]
    max_file_size: u64,
    /// Length of the permit's pseudonyms in hex characters (repeat for several).
    #[arg(long = "pseudonym-length", default_value = "16")]
    pseudonym_lengths: Vec<usize>,
    /// The request's name in the report.
    #[arg(long, default_value = "local")]
    request: String,
    /// Write the report here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The files to check; each is named in the report as given.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl CheckArgs {
    fn policy(&self) -> CheckPolicy {
        CheckPolicy {
            files: FilePolicy {
                allowed_extensions: self
                    .allowed_file_types
                    .iter()
                    .map(|ext| ext.trim().trim_start_matches('.').to_ascii_lowercase())
                    .filter(|ext| !ext.is_empty())
                    .collect(),
                max_file_size: self.max_file_size,
            },
            thresholds: Thresholds::from_percent(
                self.min_cell_count,
                self.dominance_n,
                self.dominance_k_percent,
                self.p_percent,
                self.min_degrees_of_freedom,
            ),
            pseudonym_hex_lengths: self.pseudonym_lengths.clone(),
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    haven_api::quantity::milli_units(text)
        .and_then(|milli| u64::try_from(milli.div_euclid(1000)).ok())
        .ok_or_else(|| format!("{text:?} is not a size in bytes or a quantity such as 10Mi"))
}

/// Runs the checks; `Ok(true)` when a hard check failed.
pub fn run(args: CheckArgs) -> anyhow::Result<bool> {
    let policy = args.policy();
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let name = path.to_string_lossy();
        // One unreadable path is one refused file in the report, never the end of the report.
        let checked = FileChecks::compute(path, &name, &policy).unwrap_or_else(|error| FileChecks {
            path: name.to_string(),
            size: 0,
            sha256: String::new(),
            checks: vec![Check::fail(disclosure::FILE_POLICY, format!("cannot be read: {error}"))],
        });
        let blocking: Vec<&str> =
            checked.checks.iter().filter(|check| check.blocks()).map(|check| check.check.as_str()).collect();
        let verdict =
            if blocking.is_empty() { String::new() } else { format!(" (blocked: {})", blocking.join(", ")) };
        eprintln!("{name}: {}{verdict}", disclosure::summary(&checked.checks));
        files.push(checked);
    }
    let report = disclosure::report(&args.request, &files, &policy.thresholds, chrono::Utc::now());
    let json = serde_json::to_string_pretty(&report)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?
        }
        None => crate::output::print(&json)?,
    }
    Ok(report.blocks())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CheckArgs,
    }

    fn parse(args: &[&str]) -> CheckArgs {
        Cli::try_parse_from(std::iter::once("check").chain(args.iter().copied())).expect("parses").args
    }

    #[test]
    fn defaults_are_the_permit_defaults() {
        let policy = parse(&["out.csv"]).policy();
        assert_eq!(policy, CheckPolicy::default());

        let permit = haven_api::permit::AirlockPolicy::default();
        let d = &permit.disclosure;
        let from_permit = Thresholds::from_percent(
            d.min_cell_count,
            d.dominance_n,
            d.dominance_k_percent,
            d.p_percent,
            d.min_degrees_of_freedom,
        );
        assert_eq!(policy.thresholds, from_permit);
        // The file types of the default tier (3), which a permit gets when it names none.
        let tier_3 = haven_api::tier::TierProfiles::default().profile(3).allowed_file_types.clone();
        assert_eq!(policy.files.allowed_extensions, tier_3);
        assert_eq!(Ok(policy.files.max_file_size), parse_size(&permit.max_file_size.0));
    }

    #[test]
    fn options_set_the_policy() {
        let policy = parse(&[
            "--min-cell-count=5",
            "--dominance-n=3",
            "--dominance-k-percent=80",
            "--p-percent=20",
            "--min-degrees-of-freedom=30",
            "--allowed-file-types=CSV,.zip",
            "--max-file-size=1Ki",
            "--pseudonym-length=16",
            "--pseudonym-length=32",
            "a.csv",
        ])
        .policy();
        assert_eq!(policy.thresholds.min_cell_count, 5);
        assert_eq!(policy.thresholds.dominance_n, 3);
        assert_eq!(policy.thresholds.dominance_k, 0.8);
        assert_eq!(policy.thresholds.p_ratio, 0.2);
        assert_eq!(policy.thresholds.min_degrees_of_freedom, 30);
        assert_eq!(policy.files.allowed_extensions, ["csv", "zip"]);
        assert_eq!(policy.files.max_file_size, 1024);
        assert_eq!(policy.pseudonym_hex_lengths, [16, 32]);
    }

    #[test]
    fn sizes_are_bytes_or_quantities() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("10Mi"), Ok(10 << 20));
        assert!(parse_size("ten").is_err());
    }
}
