use super::*;

#[test]
fn a_detail_names_rows_and_cells_and_reads_back() {
    let mut flagged = Flagged::default();
    flagged.flag(3, || "region=North, count 4".into());
    flagged.flag(7, || "region=South, count 2".into());
    let detail = flagged.detail("cell", "with a count below 10");
    assert_eq!(
        detail,
        "2 cells with a count below 10 (rows 3, 7): region=North, count 4; region=South, count 2"
    );
    assert_eq!(parse(&detail), Some((2, vec![3, 7])));
}

#[test]
fn long_lists_are_cut_and_say_how_many_more() {
    let mut flagged = Flagged::default();
    for row in 2..52 {
        flagged.flag(row, || format!("count {row}"));
    }
    let detail = flagged.detail("cell", "with a count below 10");
    assert!(detail.contains("21 and 30 more)"), "{detail}");
    assert!(detail.ends_with("; and 45 more"), "{detail}");
    let (count, rows) = parse(&detail).expect("parses");
    assert_eq!(count, 50);
    assert_eq!(rows, (2..22).collect::<Vec<_>>());
}

#[test]
fn one_cell_reads_in_the_singular() {
    let mut flagged = Flagged::default();
    flagged.flag(5, || "count 1".into());
    assert_eq!(
        flagged.detail("cell", "with a count below 10"),
        "1 cell with a count below 10 (row 5): count 1"
    );
}

#[test]
fn text_from_the_file_cannot_forge_rows() {
    let mut flagged = Flagged::default();
    flagged.flag(4, || "name=x (rows 99, 98): y".into());
    let detail = flagged.detail("cell", "with a count below 10");
    assert_eq!(parse(&detail), Some((1, vec![4])));
}

#[test]
fn a_detail_without_a_leading_count_does_not_parse() {
    assert_eq!(parse("no count below 10 in 4 cells"), None);
}
