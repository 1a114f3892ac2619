//! Matching the rules to the source header: which input column becomes which output column
//! under which transform. Everything that can be wrong with the rules or the header is found
//! here, before a single row is read or written.

use std::collections::{HashMap, HashSet};

use csv::ByteRecord;

use super::error::PrepareError;
use super::spec::{KAnonymitySpec, PreparationSpec, RuleKind, UnknownColumnPolicy};
use super::transform::Transform;

/// Shortest permit key accepted when a column is pseudonymised: a short key can be guessed
/// and every pseudonym reversed by hashing candidate values.
const MIN_KEY_BYTES: usize = 16;

/// UTF-8 byte order mark some spreadsheet exports put before the header.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One column of the extract.
#[derive(Debug)]
pub(crate) struct PlannedColumn {
    /// Position in the source record.
    pub input: usize,
    pub name: String,
    pub rule: RuleKind,
    pub transform: Transform,
}

/// The extract's columns in source order (dropped ones left out), and which of them are
/// quasi-identifiers.
#[derive(Debug)]
pub(crate) struct Plan {
    pub columns: Vec<PlannedColumn>,
    /// Positions in `columns` of the quasi-identifiers.
    pub quasi_identifiers: Vec<usize>,
    pub k_anonymity: Option<KAnonymitySpec>,
}

/// The one-byte delimiter, checked.
pub(crate) fn delimiter(spec: &PreparationSpec) -> Result<u8, PrepareError> {
    match spec.delimiter.as_bytes() {
        [b'"' | b'\n' | b'\r'] => Err(invalid(spec, None, "delimiter cannot be a quote or a line break")),
        [byte] => Ok(*byte),
        _ => Err(invalid(spec, None, "delimiter must be exactly one byte (one ASCII character)")),
    }
}

/// Checks the rules on their own and builds each column's transform, keyed by name.
pub(crate) fn transforms<'s>(
    spec: &'s PreparationSpec,
    key: &[u8],
) -> Result<HashMap<&'s str, Option<Transform>>, PrepareError> {
    delimiter(spec)?;
    let has_hmac = spec.columns.iter().any(|c| c.rule == RuleKind::Hmac);
    if has_hmac && key.len() < MIN_KEY_BYTES {
        let reason =
            format!("the permit key has {} bytes; pseudonyms need at least {MIN_KEY_BYTES}", key.len());
        return Err(invalid(spec, None, &reason));
    }
    if let Some(k) = &spec.k_anonymity {
        if k.k == 0 {
            return Err(invalid(spec, None, "kAnonymity.k must be at least 1"));
        }
        if k.max_suppressed_percent > 100 {
            return Err(invalid(spec, None, "kAnonymity.maxSuppressedPercent must be 0-100"));
        }
        if !spec.columns.iter().any(|c| c.quasi_identifier) {
            return Err(invalid(
                spec,
                None,
                "kAnonymity needs at least one column with quasiIdentifier: true",
            ));
        }
    }
    let mut transforms = HashMap::with_capacity(spec.columns.len());
    for column in &spec.columns {
        let transform = Transform::for_column(column, key)
            .map_err(|reason| invalid(spec, Some(&column.name), &reason))?;
        if transforms.insert(column.name.as_str(), transform).is_some() {
            return Err(invalid(spec, Some(&column.name), "the column has more than one rule"));
        }
    }
    if transforms.values().all(Option::is_none) {
        return Err(invalid(spec, None, "every column is dropped, so the extract would be empty"));
    }
    Ok(transforms)
}

/// Matches the rules to the source header.
pub(crate) fn plan(spec: &PreparationSpec, key: &[u8], header: &ByteRecord) -> Result<Plan, PrepareError> {
    let mut transforms = transforms(spec, key)?;
    let dataset = || spec.name.clone();
    if header.is_empty() {
        return Err(PrepareError::MissingHeader { dataset: dataset() });
    }
    let mut names = Vec::with_capacity(header.len());
    for (index, raw) in header.iter().enumerate() {
        let raw = if index == 0 { raw.strip_prefix(BOM).unwrap_or(raw) } else { raw };
        let name = std::str::from_utf8(raw)
            .map_err(|_| PrepareError::HeaderNotUtf8 { dataset: dataset(), position: index + 1 })?;
        names.push(name);
    }
    let mut seen = HashSet::with_capacity(names.len());
    if let Some(second) = names.iter().position(|name| !seen.insert(*name)) {
        let first = names.iter().position(|name| *name == names[second]).unwrap_or(second);
        return Err(PrepareError::DuplicateColumn {
            dataset: dataset(),
            first: first + 1,
            second: second + 1,
        });
    }
    if let Some(missing) = spec.columns.iter().find(|c| !seen.contains(c.name.as_str())) {
        return Err(PrepareError::MissingColumn { dataset: dataset(), column: missing.name.clone() });
    }
    let mut columns = Vec::new();
    let mut quasi_identifiers = Vec::new();
    for (input, name) in names.into_iter().enumerate() {
        let Some(column) = spec.columns.iter().find(|c| c.name == name) else {
            match spec.on_unknown_column {
                UnknownColumnPolicy::Fail => {
                    return Err(PrepareError::UnknownColumn { dataset: dataset(), position: input + 1 });
                }
                UnknownColumnPolicy::Drop => continue,
            }
        };
        let Some(transform) = transforms.remove(name).flatten() else { continue };
        if column.quasi_identifier {
            quasi_identifiers.push(columns.len());
        }
        columns.push(PlannedColumn { input, name: name.to_owned(), rule: column.rule, transform });
    }
    Ok(Plan { columns, quasi_identifiers, k_anonymity: spec.k_anonymity.clone() })
}

impl Plan {
    /// The extract's header row.
    pub(crate) fn header(&self) -> ByteRecord {
        self.columns.iter().map(|c| c.name.as_bytes()).collect()
    }
}

fn invalid(spec: &PreparationSpec, column: Option<&str>, reason: &str) -> PrepareError {
    PrepareError::InvalidSpec {
        dataset: spec.name.clone(),
        column: column.map(str::to_owned),
        reason: reason.to_owned(),
    }
}
