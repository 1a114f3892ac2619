//! Properties over generated tables.
//!
//! Secret values are drawn from `[g-z][a-z0-9]{7,15}`: they start with a letter that is not a
//! hex digit, so a secret can never appear by accident inside a hex pseudonym, and at 8+
//! characters it cannot match a header name or a band label either. Finding one in the
//! output therefore means it leaked.

use proptest::prelude::*;

use super::test_support::run;
use super::*;

fn secret() -> impl Strategy<Value = String> {
    "[g-z][a-z0-9]{7,15}"
}

/// Rows of (pseudonymised id, dropped secret, age).
fn rows() -> impl Strategy<Value = Vec<(String, String, u8)>> {
    prop::collection::vec((secret(), secret(), 0u8..100), 0..60)
}

fn action() -> impl Strategy<Value = Option<(u32, KAnonymityAction)>> {
    prop_oneof![
        Just(None),
        (1u32..5).prop_map(|k| Some((k, KAnonymityAction::Report))),
        (1u32..5).prop_map(|k| Some((k, KAnonymityAction::SuppressRows))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_row_is_written_or_suppressed_and_no_secret_reaches_the_extract(
        rows in rows(),
        action in action(),
        width in 1i64..30,
    ) {
        let mut spec = PreparationSpec::test(vec![
            ColumnSpec::hmac("pid"),
            ColumnSpec::drop("secret"),
            ColumnSpec::band("age", width, None, None).quasi(),
        ]);
        if let Some((k, action)) = action {
            // Allow any amount of suppression: this property is about accounting, not limits.
            spec = spec.k_anonymous(k, action, 100);
        }
        let mut input = String::from("pid,secret,age\n");
        for (pid, secret, age) in &rows {
            input.push_str(&format!("{pid},{secret},{age}\n"));
        }
        let (output, report) = run(&spec, &input).expect("prepare");

        prop_assert_eq!(report.rows_in, rows.len() as u64);
        prop_assert_eq!(report.rows_out + report.suppressed_rows, report.rows_in);
        prop_assert_eq!(output.lines().count() as u64, report.rows_out + 1);
        for (pid, secret, _) in &rows {
            prop_assert!(!output.contains(pid.as_str()), "pseudonymised value {} leaked", pid);
            prop_assert!(!output.contains(secret.as_str()), "dropped value {} leaked", secret);
        }
        if let Some(k) = &report.k_anonymity {
            let sizes: u64 = k.class_size_histogram.values().sum();
            prop_assert_eq!(sizes, k.classes);
            if matches!(action, Some((_, KAnonymityAction::SuppressRows))) && report.rows_out > 0 {
                prop_assert!(k.minimum_k.is_some_and(|m| m >= u64::from(k.k)), "suppression leaves only classes of k or more");
            }
        }
    }
}
