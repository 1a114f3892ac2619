use super::*;
use crate::prepare::test_support::{KEY, OTHER_KEY, apply};
use crate::prepare::{ColumnSpec, DateGranularity, HmacSpec};

fn hmac(column: &str, key: &[u8], value: &str) -> String {
    apply(&ColumnSpec::hmac(column), key, value).expect("hmac")
}

fn date(to: DateGranularity, band_years: Option<u32>, value: &str) -> Result<String, String> {
    apply(&ColumnSpec::date("dob", to, band_years), KEY, value)
}

fn year(value: &str) -> Result<String, String> {
    date(DateGranularity::Year, None, value)
}

fn band(value: &str) -> Result<String, String> {
    apply(&ColumnSpec::band("age", 10, Some(90), Some(18)), KEY, value)
}

#[test]
fn hmac_matches_an_independent_python_reference() {
    // python3 -c 'import hmac,hashlib; k=b"permit-key-0123456789abcdef";
    //   s=hmac.new(k,b"haven-column:nhs_number",hashlib.sha256).digest();
    //   print(hmac.new(s,b"9434765919",hashlib.sha256).hexdigest())'
    // → ec7e2130a26b5bd07db31a08dadc417b052295cc73adfda2effa6cae81e79b7c
    assert_eq!(hmac("nhs_number", KEY, "9434765919"), "ec7e2130a26b5bd0");
    let full = apply(&ColumnSpec::hmac("nhs_number").with_hmac(64, true, false), KEY, "9434765919");
    assert_eq!(full.expect("hmac"), "ec7e2130a26b5bd07db31a08dadc417b052295cc73adfda2effa6cae81e79b7c");
    // Same one-liner with column b"haven-column:patient_id" → a255ff58216d14e7…
    assert_eq!(hmac("patient_id", KEY, "9434765919"), "a255ff58216d14e7");
    // Column b"haven-column:name", value "zoë".encode() (UTF-8 bytes) → 11b4d5b5e3667220…
    assert_eq!(hmac("name", KEY, "zoë"), "11b4d5b5e3667220");
    // Key b"another-permit-key-0123456789", column nhs_number → 14db7f425b09937d…
    assert_eq!(hmac("nhs_number", OTHER_KEY, "9434765919"), "14db7f425b09937d");
}

#[test]
fn the_same_value_gets_the_same_pseudonym_within_a_key_and_column() {
    assert_eq!(hmac("pid", KEY, "P-0001"), hmac("pid", KEY, "P-0001"));
    assert_ne!(hmac("pid", KEY, "P-0001"), hmac("pid", KEY, "P-0002"));
}

#[test]
fn pseudonyms_differ_across_permit_keys_and_across_columns() {
    assert_ne!(hmac("pid", KEY, "P-0001"), hmac("pid", OTHER_KEY, "P-0001"));
    assert_ne!(hmac("pid", KEY, "P-0001"), hmac("mother_pid", KEY, "P-0001"));
}

#[test]
fn hmac_trims_by_default_and_a_blank_value_is_null() {
    assert_eq!(hmac("pid", KEY, "  P-0001\t"), hmac("pid", KEY, "P-0001"));
    assert_eq!(hmac("pid", KEY, "   "), "");
    let untrimmed = ColumnSpec::hmac("pid").with_hmac(16, false, false);
    assert_ne!(
        apply(&untrimmed, KEY, " P-0001").expect("hmac"),
        apply(&untrimmed, KEY, "P-0001").expect("hmac")
    );
    assert_eq!(apply(&untrimmed, KEY, "   ").expect("hmac").len(), 16, "without trim, spaces are a value");
}

#[test]
fn case_insensitive_hmac_lowercases_unicode_too() {
    let column = ColumnSpec::hmac("name").with_hmac(16, true, true);
    let pseudonym = |value| apply(&column, KEY, value).expect("hmac");
    assert_eq!(pseudonym("ZOË"), pseudonym("zoë"));
    assert_eq!(pseudonym("ZOË"), hmac("name", KEY, "zoë"), "lower-casing happens before hashing");
    assert_eq!(pseudonym("AB12CD"), pseudonym("ab12cd"));
    let long_upper = "X".repeat(200);
    assert_eq!(pseudonym(&long_upper), pseudonym(&"x".repeat(200)), "ASCII path handles more than one chunk");
    assert_ne!(hmac("name", KEY, "ZOË"), hmac("name", KEY, "zoë"), "case-sensitive by default");
}

#[test]
fn hmac_length_is_kept_within_8_to_64() {
    for length in [8, 16, 33, 64] {
        let column = ColumnSpec::hmac("pid").with_hmac(length, true, false);
        assert_eq!(apply(&column, KEY, "P-0001").expect("hmac").len(), usize::from(length));
    }
    for length in [0, 7, 65, 255] {
        let column = ColumnSpec::hmac("pid").with_hmac(length, true, false);
        assert!(apply(&column, KEY, "P-0001").expect_err("refused").contains("8-64"));
    }
    assert_eq!(HmacSpec::default(), HmacSpec { length: 16, trim: true, case_insensitive: false });
}

#[test]
fn hmac_handles_very_long_values() {
    let long = "é".repeat(500_000);
    let pseudonym = hmac("notes", KEY, &long);
    assert_eq!(pseudonym.len(), 16);
    assert_ne!(pseudonym, hmac("notes", KEY, &long[..long.len() - 2]));
}

#[test]
fn dates_generalise_to_year_month_and_band() {
    assert_eq!(year("1987-06-15").as_deref(), Ok("1987"));
    assert_eq!(date(DateGranularity::YearMonth, None, "1987-06-15").as_deref(), Ok("1987-06"));
    assert_eq!(date(DateGranularity::YearBand, Some(5), "1987-06-15").as_deref(), Ok("1985-1989"));
    assert_eq!(date(DateGranularity::YearBand, Some(5), "1985-01-01").as_deref(), Ok("1985-1989"));
    assert_eq!(date(DateGranularity::YearBand, Some(10), "2009-12-31").as_deref(), Ok("2000-2009"));
    assert_eq!(date(DateGranularity::YearBand, Some(10), "0005-03-01").as_deref(), Ok("0000-0009"));
}

#[test]
fn timestamps_use_their_date_part_as_written() {
    assert_eq!(year("1987-06-15T10:30:00Z").as_deref(), Ok("1987"));
    assert_eq!(year("1987-12-31T23:30:00-05:00").as_deref(), Ok("1987"), "no conversion to UTC");
    assert_eq!(year("1987-06-15T10:30:00.123456").as_deref(), Ok("1987"));
    assert_eq!(year("1987-06-15 10:30:00").as_deref(), Ok("1987"));
    assert_eq!(year(" 1987-06-15 ").as_deref(), Ok("1987"), "surrounding space is trimmed");
}

#[test]
fn leap_days_exist_only_in_leap_years() {
    assert_eq!(year("2024-02-29").as_deref(), Ok("2024"));
    assert_eq!(year("2000-02-29").as_deref(), Ok("2000"));
    assert!(year("2023-02-29").expect_err("not a leap year").contains("not a real calendar date"));
    assert!(year("1900-02-29").is_err(), "1900 was not a leap year");
    assert!(year("2024-02-29T12:00:00Z").is_ok());
}

#[test]
fn bad_dates_fail_closed_without_quoting_the_value() {
    for bad in [
        "1987-13-01",
        "1987-04-31",
        "1987-00-10",
        "87-06-15",
        "15/06/1987",
        "1987-6-15",
        "1987/06/15",
        "19870615",
        "1987-06-15x",
        "1987-06-15T25:00:00",
        "1987-06-15T10:30",
        "unknown",
        "١٩٨٧-٠٦-١٥",
    ] {
        let reason = year(bad).expect_err(bad);
        assert!(!reason.contains(bad), "the value must not leak into the error: {reason}");
    }
}

#[test]
fn year_band_needs_band_years_and_only_year_band_takes_them() {
    let refuse = |to, band_years| {
        Transform::for_column(&ColumnSpec::date("dob", to, band_years), KEY).expect_err("refused")
    };
    assert!(refuse(DateGranularity::YearBand, None).contains("bandYears"));
    assert!(refuse(DateGranularity::YearBand, Some(0)).contains("bandYears"));
    assert!(refuse(DateGranularity::Year, Some(5)).contains("bandYears"));
}

#[test]
fn truncate_keeps_characters_not_bytes() {
    let truncate =
        |length, value| apply(&ColumnSpec::truncate("postcode", length), KEY, value).expect("truncate");
    assert_eq!(truncate(4, "SW1A 1AA"), "SW1A");
    assert_eq!(truncate(3, "日本語テキスト"), "日本語");
    assert_eq!(truncate(2, "👩‍🔬x"), "👩\u{200d}", "code points, not grapheme clusters");
    assert_eq!(truncate(10, "short"), "short");
    assert_eq!(truncate(3, "né"), "né");
    assert_eq!(truncate(5, &"ü".repeat(1_000_000)), "üüüüü");
    assert!(Transform::for_column(&ColumnSpec::truncate("postcode", 0), KEY).is_err());
}

#[test]
fn band_floors_to_the_width() {
    let width10 = |value| apply(&ColumnSpec::band("n", 10, None, None), KEY, value);
    for (value, expected) in [
        ("34", "30-39"),
        ("30", "30-39"),
        ("39.99", "30-39"),
        ("0", "0-9"),
        ("-0.5", "-10--1"),
        ("-1", "-10--1"),
        ("-10", "-10--1"),
        ("-10.5", "-20--11"),
        ("+7", "0-9"),
        (".5", "0-9"),
        ("12.", "10-19"),
        (" 42 ", "40-49"),
    ] {
        assert_eq!(width10(value).as_deref(), Ok(expected), "{value}");
    }
    let width1 = apply(&ColumnSpec::band("n", 1, None, None), KEY, "-3.2");
    assert_eq!(width1.as_deref(), Ok("-4"), "width 1 is the floor itself");
}

#[test]
fn band_top_and_bottom_codes_collapse_the_tails() {
    assert_eq!(band("90").as_deref(), Ok("90+"));
    assert_eq!(band("120").as_deref(), Ok("90+"));
    assert_eq!(band("89.9").as_deref(), Ok("80-89"));
    assert_eq!(band("17.9").as_deref(), Ok("<18"));
    assert_eq!(band("-4").as_deref(), Ok("<18"));
    assert_eq!(band("18").as_deref(), Ok("10-19"));
}

#[test]
fn band_refuses_what_is_not_a_number() {
    for bad in ["abc", "1e3", "--1", "1.2.3", "0x1F", "-", ".", "1,5", "NaN", "inf"] {
        assert!(band(bad).expect_err(bad).contains("number"), "{bad}");
    }
    assert!(band(&"9".repeat(40)).expect_err("huge").contains("too large"));
    let refuse = |spec| Transform::for_column(&spec, KEY).expect_err("refused");
    assert!(refuse(ColumnSpec::band("n", 0, None, None)).contains("width"));
    assert!(refuse(ColumnSpec::band("n", 10, Some(18), Some(90))).contains("topCode"));
}

#[test]
fn nulls_stay_null_under_every_rule() {
    let columns = [
        ColumnSpec::keep("c"),
        ColumnSpec::hmac("c"),
        ColumnSpec::date("c", DateGranularity::Year, None),
        ColumnSpec::truncate("c", 3),
        ColumnSpec::band("c", 10, None, None),
        ColumnSpec::test("c", RuleKind::Suppress),
    ];
    for column in &columns {
        let transform = Transform::for_column(column, KEY).expect("valid").expect("not dropped");
        let mut out = Vec::new();
        transform.apply("", &mut out).expect("null is fine");
        assert!(out.is_empty(), "{:?}", column.rule);
    }
    assert_eq!(apply(&ColumnSpec::test("c", RuleKind::Suppress), KEY, "secret").as_deref(), Ok(""));
    assert!(Transform::for_column(&ColumnSpec::drop("c"), KEY).expect("valid").is_none());
}

#[test]
fn keep_copies_unicode_unchanged() {
    assert_eq!(apply(&ColumnSpec::keep("c"), KEY, " Zoë 日本 ").as_deref(), Ok(" Zoë 日本 "));
}

#[test]
fn parameters_of_another_rule_are_refused() {
    let keep_with_hmac = ColumnSpec { hmac: Some(HmacSpec::default()), ..ColumnSpec::keep("pid") };
    let reason = Transform::for_column(&keep_with_hmac, KEY).expect_err("refused");
    assert_eq!(reason, "hmac parameters are only allowed with rule Hmac, not Keep");
    let missing = ColumnSpec::test("age", RuleKind::Band);
    assert!(Transform::for_column(&missing, KEY).expect_err("refused").contains("needs band"));
    let dropped_qi = ColumnSpec::drop("age").quasi();
    assert!(Transform::for_column(&dropped_qi, KEY).expect_err("refused").contains("quasiIdentifier"));
}

#[test]
fn transforms_never_print_the_key() {
    let transform = Transform::for_column(&ColumnSpec::hmac("pid"), KEY).expect("valid");
    assert!(!format!("{transform:?}").contains("permit-key"));
}
