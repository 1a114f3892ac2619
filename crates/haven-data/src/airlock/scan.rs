//! An optional external scanner (e.g. ClamAV's `clamscan`) run on every snapshot file. Its
//! exit status is the verdict, as scanners report it: zero is clean, anything else blocks.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often a running scanner is polled for its exit.
const POLL: Duration = Duration::from_millis(20);
/// Most bytes of the scanner's output kept for the verdict's detail.
const OUTPUT_LIMIT: usize = 500;

/// A configured scanner: a program and its arguments; the file's path is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanner {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: Duration,
}

/// What the scanner said about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    Clean,
    /// Non-zero exit, a signal or a timeout; the detail says which, with the output.
    Flagged(String),
}

impl Scanner {
    /// Parses a command line split on whitespace, e.g. `clamscan --no-summary -d /db`.
    pub fn from_command_line(command: &str, timeout: Duration) -> Option<Self> {
        let mut words = command.split_whitespace().map(String::from);
        let program = words.next()?;
        Some(Self { program, args: words.collect(), timeout })
    }

    /// Runs the scanner on `file`. An error means it could not be run at all (not a verdict),
    /// so the caller retries rather than deciding.
    pub fn scan(&self, file: &Path) -> std::io::Result<ScanVerdict> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg(file)
            // Nothing of the operator's environment reaches a program reading hostile files.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout stops the helpers it started too (a `sh -c`
            // wrapper's child would otherwise keep the output pipes open).
            .process_group(0)
            .spawn()?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() >= self.timeout {
                break None;
            }
            thread::sleep(POLL);
        };
        stop_group(&mut child);
        let output = read_output(&mut child);
        Ok(match status {
            Some(status) if status.success() => ScanVerdict::Clean,
            Some(status) => ScanVerdict::Flagged(format!("{} exited with {status}: {output}", self.program)),
            None => {
                ScanVerdict::Flagged(format!("{} did not finish within {:?}", self.program, self.timeout))
            }
        })
    }
}

/// Kills whatever is left of the scanner's process group (nothing, after a clean exit) and
/// reaps the scanner, so its output pipes reach end-of-file.
fn stop_group(child: &mut Child) {
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
    let _ = child.wait();
}

/// The first bytes of the scanner's stdout and stderr, for the verdict's detail.
fn read_output(child: &mut Child) -> String {
    let mut output = String::new();
    let stdout = child.stdout.take().map(|s| Box::new(s) as Box<dyn Read>);
    let stderr = child.stderr.take().map(|s| Box::new(s) as Box<dyn Read>);
    for stream in [stdout, stderr].into_iter().flatten() {
        let mut text = String::new();
        let _ = stream.take(OUTPUT_LIMIT as u64).read_to_string(&mut text);
        if !text.trim().is_empty() {
            output.push_str(text.trim());
            output.push(' ');
        }
    }
    output.trim_end().chars().take(OUTPUT_LIMIT).collect()
}
