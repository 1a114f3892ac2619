//! docs/conformance.md claims that tests prove Haven meets SATRE and EHDS statements. This
//! keeps the claim honest: every `` `path::function` `` it names must be a test in that file
//! (a `fn` under `#[test]` or `#[tokio::test]`, not a helper of the same name); every row of a
//! table with a Proof column must name one unless its status is Not met; a Partial or Not met
//! row must say what is left to the TRE operator; and there must be such rows at all.
//!
//! It lives here, beside the other checks of repository files against the code (crds/,
//! examples/), because `make test` runs this crate's tests without a cluster.

use std::collections::BTreeMap;
use std::path::{Component, Path};

const DOCUMENT: &str = "docs/conformance.md";
/// A table with this column is a conformance table; its tests go in it.
const PROOF: &str = "proof";
const STATUS: &str = "status";
/// What the organisation running the TRE must still do; required unless the status is Full.
const LEFT_TO_OPERATOR: &str = "left to the tre operator";
const FULL: &str = "Full";
const NOT_MET: &str = "Not met";
const STATUSES: [&str; 3] = [FULL, "Partial", NOT_MET];

/// A `` `path::function` `` in the document, with the line it is first named on.
#[derive(Debug, PartialEq, Eq)]
struct Reference {
    line: usize,
    path: String,
    function: String,
}

/// Every `` `path.rs::function` `` code span in `text`.
fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        // Code spans are the odd pieces between backticks.
        for span in line.split('`').skip(1).step_by(2) {
            let Some((path, function)) = span.rsplit_once("::") else { continue };
            if path.ends_with(".rs") && is_identifier(function) {
                found.push(Reference { line: index + 1, path: path.into(), function: function.into() });
            }
        }
    }
    found
}

fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Markdown table: its header cells and its body rows with their line numbers.
struct Table {
    line: usize,
    header: Vec<String>,
    separated: bool,
    rows: Vec<(usize, Vec<String>)>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner.split('|').map(|cell| cell.trim().to_owned()).collect()
}

fn tables(text: &str) -> Vec<Table> {
    let mut tables: Vec<Table> = Vec::new();
    let mut in_table = false;
    for (index, line) in text.lines().enumerate() {
        if !line.trim_start().starts_with('|') {
            in_table = false;
            continue;
        }
        let row = cells(line);
        match tables.last_mut() {
            Some(table) if in_table => {
                let separator = row.iter().all(|c| !c.is_empty() && c.chars().all(|c| "-: ".contains(c)));
                if separator && !table.separated && table.rows.is_empty() {
                    table.separated = true;
                } else {
                    table.rows.push((index + 1, row));
                }
            }
            _ => tables.push(Table { line: index + 1, header: row, separated: false, rows: Vec::new() }),
        }
        in_table = true;
    }
    tables
}

/// Everything wrong with `document`; `read` gives a repository file's text, if it exists.
fn check(document: &str, read: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut rows = 0;
    for table in tables(document) {
        let column = |name: &str| table.header.iter().position(|h| h.to_lowercase() == name);
        let Some(proof) = column(PROOF) else { continue };
        let Some(status) = column(STATUS) else {
            problems.push(format!("line {}: a table with a Proof column has no Status column", table.line));
            continue;
        };
        if !table.separated {
            problems.push(format!("line {}: the table has no |---| line under its header", table.line));
        }
        let left = column(LEFT_TO_OPERATOR);
        for (line, row) in &table.rows {
            rows += 1;
            let id = row.first().map_or("?", String::as_str);
            if row.len() != table.header.len() {
                problems.push(format!(
                    "line {line}: {id} has {} cells, the header {}",
                    row.len(),
                    table.header.len()
                ));
                continue;
            }
            let state = row[status].trim_matches('*').trim();
            if !STATUSES.contains(&state) {
                problems.push(format!("line {line}: {id} has status {state:?}, not one of {STATUSES:?}"));
            }
            let cited = references(&row[proof]);
            if state != NOT_MET && cited.is_empty() {
                problems.push(format!("line {line}: {id} is {state} but its Proof names no test"));
            } else if state == FULL
                && !cited
                    .iter()
                    .any(|r| r.path.starts_with("e2e/tests/") || r.path.starts_with("e2e/nodes/tests/"))
            {
                // A unit test proves a part; a Full claim is about the running system.
                problems.push(format!("line {line}: {id} is Full but its Proof names no end-to-end test"));
            }
            if let Some(left) = left.filter(|_| state != FULL)
                && matches!(row[left].as_str(), "" | "-" | "—")
            {
                problems
                    .push(format!("line {line}: {id} is {state} but says nothing is left to the operator"));
            }
        }
    }
    if rows == 0 {
        problems.push("no conformance table: no row in a table with Proof and Status columns".into());
    }
    let mut named: BTreeMap<(String, String), usize> = BTreeMap::new();
    for reference in references(document) {
        named.entry((reference.path, reference.function)).or_insert(reference.line);
    }
    for ((path, function), line) in named {
        if let Err(why) = proves(&path, &function, &read) {
            problems.push(format!("line {line}: `{path}::{function}`: {why}"));
        }
    }
    problems
}

/// Whether `path` holds a test named `function`.
fn proves(path: &str, function: &str, read: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    if !Path::new(path).components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("not a path inside the repository".into());
    }
    let source = read(path).ok_or_else(|| format!("{path} does not exist"))?;
    let definitions = definitions(&source, function);
    if definitions.is_empty() {
        Err(format!("{path} has no fn {function}"))
    } else if definitions.iter().any(|before| is_under_test_attribute(before)) {
        Ok(())
    } else {
        Err(format!("fn {function} in {path} is not a test: no #[test] or #[tokio::test] on it"))
    }
}

/// For each `fn function(` (or `fn function<`) in code, the source text before it.
fn definitions<'a>(source: &'a str, function: &str) -> Vec<&'a str> {
    let needle = format!("fn {function}");
    source
        .match_indices(&needle)
        .map(|(at, _)| (&source[..at], &source[at + needle.len()..]))
        .filter(|(before, after)| {
            let line = before.rsplit('\n').next().unwrap_or(before);
            (after.starts_with('(') || after.starts_with('<'))
                && before.chars().next_back().is_none_or(char::is_whitespace)
                && !line.contains("//")
        })
        .map(|(before, _)| before)
        .collect()
}

/// Whether the attributes right above a `fn` (read backwards past qualifiers, other
/// attributes and comments) include `#[test]` or `#[<runtime>::test(...)]`.
fn is_under_test_attribute(before: &str) -> bool {
    let mut rest = before.trim_end();
    while let Some(shorter) = ["async", "pub", "pub(crate)", "pub(super)", "unsafe", "const"]
        .iter()
        .find_map(|word| rest.strip_suffix(word).filter(|s| s.is_empty() || s.ends_with(char::is_whitespace)))
    {
        rest = shorter.trim_end();
    }
    loop {
        let (above, last) = rest.rsplit_once('\n').unwrap_or(("", rest));
        if last.trim_start().starts_with("//") {
            rest = above.trim_end(); // a comment, even one holding `#[test]`
            continue;
        }
        if !rest.ends_with(']') {
            return false;
        }
        let Some(start) = attribute_start(rest) else { return false };
        let path = rest[start + 2..].split(['(', '=', ']']).next().unwrap_or_default().trim();
        if path.rsplit("::").next() == Some("test") {
            return true;
        }
        rest = rest[..start].trim_end();
    }
}

/// Where the `#[` of the attribute that ends `text` (with `]`) starts.
fn attribute_start(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices().rev() {
        match c {
            ']' => depth += 1,
            '[' => {
                depth -= 1;
                if depth == 0 {
                    return text[..at].strip_suffix('#').map(str::len);
                }
            }
            _ => {}
        }
    }
    None
}

/// Rows issue 9 asks the table to have: the differentiators and every EHDS Art. 73(1) duty.
const REQUIRED_ROWS: [&str; 10] = [
    "3.3.09",
    "3.1.10",
    "2.2.14",
    "3.1.11",
    "3.1.14",
    "Art. 73(1)(a)",
    "Art. 73(1)(b)",
    "Art. 73(1)(c)",
    "Art. 73(1)(d)",
    "Art. 73(1)(e)",
];

/// The required rows that the document lacks (a row is a table line starting `| <id> |`).
fn missing_rows(document: &str) -> Vec<&'static str> {
    REQUIRED_ROWS
        .into_iter()
        .filter(|id| !document.lines().any(|line| cells(line).first().is_some_and(|first| first == id)))
        .collect()
}

#[test]
fn every_statement_in_docs_conformance_is_proven_by_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let document = std::fs::read_to_string(root.join(DOCUMENT)).unwrap_or_else(|e| panic!("{DOCUMENT}: {e}"));
    let problems = check(&document, |path| std::fs::read_to_string(root.join(path)).ok());
    assert!(problems.is_empty(), "{DOCUMENT}:\n  {}", problems.join("\n  "));
    assert_eq!(missing_rows(&document), Vec::<&str>::new(), "{DOCUMENT} lacks required rows");
}

#[test]
fn a_required_row_that_is_dropped_is_named() {
    let full: String = REQUIRED_ROWS.iter().map(|id| format!("| {id} | x |\n")).collect();
    assert!(missing_rows(&full).is_empty());
    let without = full.replace("| 3.1.10 | x |\n", "");
    assert_eq!(missing_rows(&without), ["3.1.10"]);
}

/// A repository holding `tests.rs` (and an end-to-end `x.rs` like it) with tests, a helper and
/// a test only in a comment.
fn repository(path: &str) -> Option<String> {
    let source = r#"
fn helper() {}

#[test]
fn plain() {}

#[tokio::test(flavor = "multi_thread")]
async fn asynchronous() -> Result<()> { Ok(()) }

/// Documented, ignored, and with an attribute over several lines.
#[test]
#[ignore = "needs [a cluster]"]
#[cfg_attr(
    windows,
    ignore
)]
pub fn decorated<T>() {}

#[cfg(test)]
fn built_only_for_tests() {}

// #[test] fn commented_out() {}

// #[test]
fn under_a_commented_attribute() {}
"#;
    ["crates/x/src/tests.rs", "e2e/tests/x.rs"].contains(&path).then(|| source.to_owned())
}

fn document(rows: &[&str]) -> String {
    let mut text = "# Conformance\n\n| SATRE | Asks | Status | Left to the TRE operator | Proof |\n\
                    |---|---|---|---|---|\n"
        .to_owned();
    for row in rows {
        text += row;
        text += "\n";
    }
    text
}

#[test]
fn a_table_whose_tests_all_exist_passes() {
    let text = document(&[
        "| 1.1 | a | Full | — | `crates/x/src/tests.rs::plain`<br>`e2e/tests/x.rs::asynchronous` |",
        "| 1.2 | b | Partial | run a CNI | `crates/x/src/tests.rs::decorated` |",
        "| 1.3 | c | Not met | an identity provider | — |",
    ]);
    assert_eq!(check(&text, repository), Vec::<String>::new());
}

#[test]
fn a_missing_file_function_or_test_attribute_is_named() {
    let text = document(&[
        "| 1.1 | a | Partial | more | `crates/x/src/tests.rs::absent` |",
        "| 1.2 | b | Partial | more | `crates/x/src/gone.rs::plain` |",
        "| 1.3 | c | Partial | more | `crates/x/src/tests.rs::helper` |",
        "| 1.4 | d | Partial | more | `crates/x/src/tests.rs::built_only_for_tests` |",
        "| 1.5 | e | Partial | more | `crates/x/src/tests.rs::commented_out` |",
        "| 1.6 | f | Partial | more | `crates/x/src/tests.rs::under_a_commented_attribute` |",
        "| 1.7 | g | Partial | more | `crates/x/src/tests.rs::plai` |",
        "| 1.8 | h | Partial | more | `../outside.rs::plain` |",
    ]);
    let problems = check(&text, repository);
    let expected = [
        "`crates/x/src/tests.rs::absent`: crates/x/src/tests.rs has no fn absent",
        "`crates/x/src/gone.rs::plain`: crates/x/src/gone.rs does not exist",
        "`crates/x/src/tests.rs::helper`: fn helper in crates/x/src/tests.rs is not a test",
        "`crates/x/src/tests.rs::built_only_for_tests`: fn built_only_for_tests in crates/x/src/tests.rs is not a test",
        "`crates/x/src/tests.rs::commented_out`: crates/x/src/tests.rs has no fn commented_out",
        "`crates/x/src/tests.rs::under_a_commented_attribute`: fn under_a_commented_attribute in crates/x/src/tests.rs is not a test",
        "`crates/x/src/tests.rs::plai`: crates/x/src/tests.rs has no fn plai",
        "`../outside.rs::plain`: not a path inside the repository",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for want in expected {
        assert!(problems.iter().any(|p| p.contains(want)), "{want} in {problems:#?}");
    }
}

#[test]
fn a_row_without_a_test_fails_unless_it_is_not_met() {
    let text = document(&[
        "| 1.1 | a | Full | — | — |",
        "| 1.2 | b | Partial | run a CNI | see the README |",
        "| 1.3 | c | Not met | an identity provider | — |",
    ]);
    assert_eq!(
        check(&text, repository),
        [
            "line 5: 1.1 is Full but its Proof names no test",
            "line 6: 1.2 is Partial but its Proof names no test"
        ]
    );
}

#[test]
fn a_full_row_must_cite_an_end_to_end_test() {
    let text = document(&[
        "| 1.1 | a | Full | — | `crates/x/src/tests.rs::plain` |",
        "| 1.2 | b | Full | — | `e2e/tests/x.rs::plain` |",
        "| 1.3 | c | Partial | run a CNI | `crates/x/src/tests.rs::plain` |",
    ]);
    let problems = check(&text, repository);
    assert_eq!(problems, ["line 5: 1.1 is Full but its Proof names no end-to-end test"]);
}

#[test]
fn a_partial_or_not_met_row_must_say_what_is_left_to_the_operator() {
    let text = document(&[
        "| 1.1 | a | Partial | — | `crates/x/src/tests.rs::plain` |",
        "| 1.2 | b | Not met |  | — |",
    ]);
    assert_eq!(
        check(&text, repository),
        [
            "line 5: 1.1 is Partial but says nothing is left to the operator",
            "line 6: 1.2 is Not met but says nothing is left to the operator"
        ]
    );
}

#[test]
fn an_unknown_status_or_a_ragged_row_fails() {
    let text = document(&[
        "| 1.1 | a | Mostly | run a CNI | `crates/x/src/tests.rs::plain` |",
        "| 1.2 | b | Full | `crates/x/src/tests.rs::plain` |",
    ]);
    let problems = check(&text, repository);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("line 5: 1.1 has status \"Mostly\""), "{problems:#?}");
    assert_eq!(problems[1], "line 6: 1.2 has 4 cells, the header 5");
}

#[test]
fn a_document_without_conformance_rows_fails() {
    let no_rows = "no conformance table: no row in a table with Proof and Status columns";
    let header_only = document(&[]);
    let other_table = "| id | reason |\n|---|---|\n| 1.1.01 | organisational |\n";
    for text in ["", "# Conformance\n\nNothing here.\n", header_only.as_str(), other_table] {
        assert_eq!(check(text, repository), [no_rows], "{text:?}");
    }
    let no_status = "| id | Proof |\n|---|---|\n| 1.1 | `crates/x/src/tests.rs::plain` |\n";
    assert_eq!(
        check(no_status, repository),
        ["line 1: a table with a Proof column has no Status column", no_rows]
    );
    let no_separator = "| id | Status | Proof |\n| 1.1 | Full | `e2e/tests/x.rs::plain` |\n";
    assert_eq!(check(no_separator, repository), ["line 1: the table has no |---| line under its header"]);
}
