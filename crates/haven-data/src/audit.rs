//! The append-only, hash-chained audit log at `audit/audit.log`: one JSON object per line,
//! each carrying the SHA-256 of the previous line's bytes (without its newline), so editing,
//! dropping or reordering a line breaks the chain at a line [`verify`] can name.
//!
//! The chain cannot see an edit to the very last line (nothing points at it yet), so
//! [`VerifyReport::head`] gives the last line's hash for callers to anchor elsewhere (status,
//! Events). One process writes the log; threads within it share an [`AuditLog`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::hashing::sha256_hex;
use crate::store::DataStore;

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How much of the file's end is read at a time when looking for the last line.
const TAIL_CHUNK: u64 = 8 * 1024;

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("audit log I/O error at {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("audit log {path} is broken at line {line}: {reason}", path = path.display())]
    BrokenChain { path: PathBuf, line: usize, reason: String },
    #[error("cannot serialise an audit record for {path}: {source}", path = path.display())]
    Serialize { path: PathBuf, source: serde_json::Error },
    #[error("an earlier append to {path} failed part-way; reopen the log to check it", path = path.display())]
    Unusable { path: PathBuf },
}

/// One event, as the caller describes it. The time is the caller's: the library has no clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    /// Who acted: a user, or the operator itself.
    pub actor: String,
    pub action: String,
    /// What was acted on, e.g. `datapermit/cancer-study`.
    pub object: String,
    pub detail: Map<String, Value>,
}

/// A line as stored: the record plus its place in the chain. Fields serialise in this order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    time: DateTime<Utc>,
    actor: String,
    action: String,
    object: String,
    detail: Map<String, Value>,
    prev: String,
}

/// What a successful [`verify`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: usize,
    /// Hash of the last line ([`GENESIS`] for an empty log): anchor it outside the log to
    /// detect an edit to the last line or truncation of whole lines at the end.
    pub head: String,
}

/// An open audit log; cheap to share between threads behind an `Arc`.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    state: Mutex<ChainState>,
}

#[derive(Debug)]
struct ChainState {
    file: File,
    next_seq: u64,
    prev: String,
    /// Set when a write may have been cut short: the chain's tail is then unknown.
    failed: bool,
}

impl AuditLog {
    /// Opens (creating if needed) `audit/audit.log` and continues the chain from its last
    /// line. A last line that is cut short or unparseable is refused with the line number,
    /// rather than chained onto: that would hide the damage.
    pub fn open(store: &DataStore) -> Result<Self, AuditError> {
        Self::open_at(&store.audit_log())
    }

    /// Opens a chained log at any path, as [`AuditLog::open`] does; for logs with a writer of
    /// their own, such as the access gateway's `audit/access.log`.
    pub fn open_at(path: &Path) -> Result<Self, AuditError> {
        let path = path.to_owned();
        let io_err = |source| AuditError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io_err)?;
        let (next_seq, prev) = match last_line(&mut file).map_err(io_err)? {
            None => (1, GENESIS.to_owned()),
            Some(last) => match last.strip_suffix(b"\n").map(serde_json::from_slice::<Line>) {
                Some(Ok(line)) => (line.seq + 1, sha256_hex(&last[..last.len() - 1])),
                // Let the full check name the first broken line.
                _ => return Err(broken_tail(&path)),
            },
        };
        let state = ChainState { file, next_seq, prev, failed: false };
        Ok(Self { path, state: Mutex::new(state) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk before returning, so an acknowledged event
    /// survives a crash.
    pub fn append(&self, record: AuditRecord) -> Result<(), AuditError> {
        // State changes only after a successful write, so a panicked holder left it valid.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.failed {
            return Err(AuditError::Unusable { path: self.path.clone() });
        }
        let AuditRecord { time, actor, action, object, detail } = record;
        let line =
            Line { seq: state.next_seq, time, actor, action, object, detail, prev: state.prev.clone() };
        let mut bytes = serde_json::to_vec(&line)
            .map_err(|source| AuditError::Serialize { path: self.path.clone(), source })?;
        let hash = sha256_hex(&bytes);
        bytes.push(b'\n');
        if let Err(source) = state.file.write_all(&bytes).and_then(|()| state.file.sync_data()) {
            state.failed = true;
            return Err(AuditError::Io { path: self.path.clone(), source });
        }
        state.next_seq += 1;
        state.prev = hash;
        Ok(())
    }
}

impl AuditLog {
    /// After a failed append: drops the part of a line that append may have left (it was never
    /// acknowledged, so no record is lost) and continues the chain from the last whole line.
    /// Does nothing while the log is usable.
    pub fn recover(&self) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.failed {
            return Ok(());
        }
        let io_err = |source| AuditError::Io { path: self.path.clone(), source };
        let contents = fs::read(&self.path).map_err(io_err)?;
        let whole = contents.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        state.file.set_len(whole as u64).and_then(|()| state.file.sync_data()).map_err(io_err)?;
        let (next_seq, prev) = match last_line(&mut state.file).map_err(io_err)? {
            None => (1, GENESIS.to_owned()),
            Some(last) => match last.strip_suffix(b"\n").map(serde_json::from_slice::<Line>) {
                Some(Ok(line)) => (line.seq + 1, sha256_hex(&last[..last.len() - 1])),
                _ => return Err(broken_tail(&self.path)),
            },
        };
        (state.next_seq, state.prev, state.failed) = (next_seq, prev, false);
        Ok(())
    }
}

/// A point of the chain kept outside the data store (the operator writes one to a ConfigMap):
/// line `seq` hashed to `hash`. The chain alone cannot tell a log cut short, or rewritten and
/// re-chained, from an honest one; a log that no longer holds this exact line can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

impl Anchor {
    /// As the operator keeps it in its ConfigMap: `seq` and `hash` (and when, `anchoredAt`).
    pub fn to_data(&self, anchored_at: DateTime<Utc>) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([
            ("seq".to_owned(), self.seq.to_string()),
            ("hash".to_owned(), self.hash.clone()),
            ("anchoredAt".to_owned(), anchored_at.to_rfc3339()),
        ])
    }

    /// From that ConfigMap's data, checked as `--anchor` is.
    pub fn from_data(data: &std::collections::BTreeMap<String, String>) -> Result<Self, String> {
        match (data.get("seq"), data.get("hash")) {
            (Some(seq), Some(hash)) => format!("{seq}:{hash}").parse(),
            _ => Err("it holds no seq and hash".into()),
        }
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// `<seq>:<hash>`, as `haven audit verify --anchor` takes it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = text.split_once(':').ok_or("an anchor is <seq>:<sha256 hex>")?;
        let seq = seq.parse().map_err(|_| format!("anchor seq {seq:?} is not a number"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("anchor hash {hash:?} is not a SHA-256 in hex"));
        }
        Ok(Self { seq, hash: hash.to_ascii_lowercase() })
    }
}

impl AuditLog {
    /// The last line written: what to anchor.
    pub fn head(&self) -> Anchor {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        Anchor { seq: state.next_seq - 1, hash: state.prev.clone() }
    }
}

/// [`verify`], and the log must still hold the anchored line: fewer lines means it was cut
/// short; another hash there means it was rewritten from that line or before (and re-chained).
pub fn verify_against(path: &Path, anchor: &Anchor) -> Result<VerifyReport, AuditError> {
    let mut anchored = None;
    let report = walk_chain(path, |line, hash| {
        if line.seq == anchor.seq {
            anchored = Some(hash.to_owned());
        }
    })?;
    let broken =
        |reason: String| AuditError::BrokenChain { path: path.to_path_buf(), line: report.records, reason };
    match anchored {
        _ if anchor.seq == 0 => Ok(report),
        None => Err(broken(format!(
            "the log ends at line {}, but line {} was anchored: it was cut short",
            report.records, anchor.seq
        ))),
        Some(hash) if hash != anchor.hash => Err(broken(format!(
            "line {} is not the line anchored ({}): the log was rewritten from there or before",
            anchor.seq, anchor.hash
        ))),
        Some(_) => Ok(report),
    }
}

/// Checks the whole chain and reports the first broken line (1-based): an edited line breaks
/// the next line's `prev`; a dropped line leaves a `seq` gap; a truncated or invalid line is
/// reported itself.
pub fn verify(path: &Path) -> Result<VerifyReport, AuditError> {
    walk_chain(path, |_, _| {})
}

/// [`verify`], returning the records as well: read in the same pass that checks them, so what
/// is returned is what was verified, whatever happens to the file meanwhile.
pub fn read_verified(path: &Path) -> Result<(VerifyReport, Vec<AuditRecord>), AuditError> {
    let mut records = Vec::new();
    let report = walk_chain(path, |line, _| {
        let Line { time, actor, action, object, detail, .. } = line;
        records.push(AuditRecord { time, actor, action, object, detail });
    })?;
    Ok((report, records))
}

/// [`verify`], calling `each(line, hash)` for every good line.
fn walk_chain(path: &Path, mut each: impl FnMut(Line, &str)) -> Result<VerifyReport, AuditError> {
    let io_err = |source| AuditError::Io { path: path.to_path_buf(), source };
    let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut prev = GENESIS.to_owned();
    let mut records = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_err)? == 0 {
            return Ok(VerifyReport { records, head: prev });
        }
        records += 1;
        let broken =
            |reason: String| AuditError::BrokenChain { path: path.to_path_buf(), line: records, reason };
        let Some(content) = buf.strip_suffix(b"\n") else {
            return Err(broken("line has no newline: the write was cut short".into()));
        };
        let line: Line =
            serde_json::from_slice(content).map_err(|e| broken(format!("not a valid audit record: {e}")))?;
        if line.seq != records as u64 {
            return Err(broken(format!(
                "seq is {}, expected {records}: a record is missing or moved",
                line.seq
            )));
        }
        if line.prev != prev {
            return Err(broken(
                "prev is not the hash of the previous line: that line was changed or removed".into(),
            ));
        }
        prev = sha256_hex(content);
        each(line, &prev);
    }
}

/// The error for a log whose last line cannot be continued: the full check's verdict, which
/// names the first broken line.
fn broken_tail(path: &Path) -> AuditError {
    match verify(path) {
        Err(e) => e,
        Ok(report) => AuditError::BrokenChain {
            path: path.to_path_buf(),
            line: report.records,
            reason: "the last line cannot be continued".into(),
        },
    }
}

/// The file's last line including its newline, if any, read backwards from the end so a
/// long log is not read in full.
fn last_line(file: &mut File) -> io::Result<Option<Vec<u8>>> {
    let mut pos = file.metadata()?.len();
    if pos == 0 {
        return Ok(None);
    }
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let step = TAIL_CHUNK.min(pos);
        pos -= step;
        let mut chunk = vec![0u8; usize::try_from(step).unwrap_or(usize::MAX)];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        // The final byte may be this line's own newline; look before it.
        let body = &tail[..tail.len() - 1];
        if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(tail.split_off(i + 1)));
        }
        if pos == 0 {
            return Ok(Some(tail));
        }
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
