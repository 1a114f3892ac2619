//! What each column of a CSV is, from its header (trimmed, case-insensitive).

use csv::ByteRecord;

use crate::disclosure::text::sanitise;

/// The role a header gives its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `count`, `n`, `freq`, `frequency`: the number of contributors to the cell.
    Count,
    /// `top1`, `top2`, … (`largest`/`max` = top1, `second_largest`/`second` = top2): the
    /// contribution of the k-th largest contributor.
    Top(usize),
    /// `total`, `sum`: the cell's total.
    Total,
    /// `min`, `smallest`: the cell's smallest contribution, which shows a negative
    /// contribution hidden among positive ones (its total and top-k do not).
    Min,
    /// `df_resid`, `dof`: a model's residual degrees of freedom.
    Dof,
    /// Anything else: a category defining the cell.
    Dimension,
}

/// The most top-k columns recognised (`top1` … `top100`).
const MAX_TOP: usize = 100;

pub(super) fn role(header: &str) -> Role {
    let name = header.trim().to_ascii_lowercase();
    match name.as_str() {
        "count" | "n" | "freq" | "frequency" => Role::Count,
        "largest" | "max" => Role::Top(1),
        "second_largest" | "second" => Role::Top(2),
        "total" | "sum" => Role::Total,
        "min" | "smallest" => Role::Min,
        "df_resid" | "dof" => Role::Dof,
        _ => match name.strip_prefix("top").and_then(|k| k.parse::<usize>().ok()) {
            Some(k) if (1..=MAX_TOP).contains(&k) && !name.starts_with("top0") => Role::Top(k),
            _ => Role::Dimension,
        },
    }
}

/// The columns of a CSV by role. When two headers claim one role the first is used and the
/// second is noted, so the researcher learns which column was read.
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// Headers as shown in details.
    pub headers: Vec<String>,
    pub count: Option<usize>,
    /// `top[k - 1]` is the column of the k-th largest contribution.
    pub top: Vec<Option<usize>>,
    pub total: Option<usize>,
    pub min: Option<usize>,
    pub dof: Option<usize>,
    pub dimensions: Vec<usize>,
    pub notes: Vec<String>,
}

impl Layout {
    pub(super) fn from_header(record: &ByteRecord) -> Self {
        let mut layout = Layout::default();
        for (index, raw) in record.iter().enumerate() {
            let text = String::from_utf8_lossy(raw);
            // Spreadsheets write a UTF-8 byte-order mark before the first header.
            let header = text.trim_start_matches('\u{feff}').trim();
            layout.headers.push(sanitise(header, 40));
            match role(header) {
                Role::Count => layout.claim(index, |l| &mut l.count, "count"),
                Role::Total => layout.claim(index, |l| &mut l.total, "total"),
                Role::Min => layout.claim(index, |l| &mut l.min, "smallest contribution"),
                Role::Dof => layout.claim(index, |l| &mut l.dof, "degrees of freedom"),
                Role::Top(k) => {
                    if layout.top.len() < k {
                        layout.top.resize(k, None);
                    }
                    layout.claim(index, |l| &mut l.top[k - 1], &format!("top{k}"));
                }
                Role::Dimension => layout.dimensions.push(index),
            }
        }
        layout
    }

    fn claim(&mut self, index: usize, slot: impl Fn(&mut Layout) -> &mut Option<usize>, what: &str) {
        match *slot(self) {
            Some(first) => {
                let note = format!(
                    "columns {} and {} both give the {what}; {} was used",
                    self.headers[first], self.headers[index], self.headers[first]
                );
                self.notes.push(note);
                self.dimensions.push(index);
            }
            None => *slot(self) = Some(index),
        }
    }

    pub(super) fn top1(&self) -> Option<usize> {
        self.top.first().copied().flatten()
    }

    /// Carries magnitude evidence: a total, or any top-k column.
    pub(super) fn has_magnitude(&self) -> bool {
        self.total.is_some() || self.top.iter().any(Option::is_some)
    }

    /// Follows the tidy-table convention closely enough for some rule to run.
    pub(super) fn is_table(&self) -> bool {
        self.count.is_some() || self.has_magnitude()
    }

    /// Whether `index` holds evidence (a count, top-k, total or dof), not a category.
    pub(super) fn is_evidence(&self, index: usize) -> bool {
        self.count == Some(index)
            || self.total == Some(index)
            || self.min == Some(index)
            || self.dof == Some(index)
            || self.top.contains(&Some(index))
    }

    pub(super) fn header(&self, index: usize) -> &str {
        self.headers.get(index).map_or("?", String::as_str)
    }
}
