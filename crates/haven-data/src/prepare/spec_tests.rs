use serde_json::json;

use super::test_support::KEY;
use super::*;

/// A dataset exactly as `haven_api::DatasetGrant` serialises it (the operator's input):
/// `quasiIdentifier` always present, absent options left out.
fn crd_json() -> serde_json::Value {
    json!({
        "name": "visits",
        "source": "cohort/visits.csv",
        "delimiter": ";",
        "columns": [
            {"name": "pid", "rule": "Hmac", "hmac": {"length": 20, "trim": false, "caseInsensitive": true}, "quasiIdentifier": false},
            {"name": "nhs", "rule": "Hmac", "quasiIdentifier": false},
            {"name": "dob", "rule": "GeneraliseDate", "generaliseDate": {"to": "YearBand", "bandYears": 5}, "quasiIdentifier": true},
            {"name": "postcode", "rule": "Truncate", "truncate": {"length": 4}, "quasiIdentifier": true},
            {"name": "age", "rule": "Band", "band": {"width": 10, "topCode": 90, "bottomCode": 18}, "quasiIdentifier": false},
            {"name": "notes", "rule": "Drop", "quasiIdentifier": false},
            {"name": "gp", "rule": "Suppress", "quasiIdentifier": false},
            {"name": "sex", "rule": "Keep", "quasiIdentifier": true}
        ],
        "onUnknownColumn": "Drop",
        "kAnonymity": {"k": 5, "action": "SuppressRows", "maxSuppressedPercent": 2}
    })
}

#[test]
fn the_crd_json_shape_deserialises_field_for_field() {
    let spec: PreparationSpec = serde_json::from_value(crd_json()).expect("spec");
    assert_eq!(spec.delimiter, ";");
    assert_eq!(spec.on_unknown_column, UnknownColumnPolicy::Drop);
    assert_eq!(spec.columns[0].hmac, Some(HmacSpec { length: 20, trim: false, case_insensitive: true }));
    let date = spec.columns[2].generalise_date.as_ref().expect("date");
    assert_eq!((date.to, date.band_years), (DateGranularity::YearBand, Some(5)));
    assert_eq!(spec.columns[3].truncate, Some(TruncateSpec { length: 4 }));
    assert_eq!(spec.columns[4].band, Some(BandSpec { width: 10, top_code: Some(90), bottom_code: Some(18) }));
    assert_eq!(spec.columns[5].rule, RuleKind::Drop);
    assert_eq!(spec.columns[6].rule, RuleKind::Suppress);
    assert!(spec.columns[7].quasi_identifier);
    let k = spec.k_anonymity.as_ref().expect("k");
    assert_eq!((k.k, k.action, k.max_suppressed_percent), (5, KAnonymityAction::SuppressRows, 2));
    assert_eq!(serde_json::to_value(&spec).expect("serialise"), crd_json(), "and serialises back the same");
}

#[test]
fn omitted_fields_take_the_crd_defaults() {
    let spec: PreparationSpec = serde_json::from_value(json!({
        "name": "visits",
        "columns": [{"name": "pid", "rule": "Hmac", "hmac": {}}],
        "kAnonymity": {"k": 3}
    }))
    .expect("spec");
    assert_eq!(spec.source, "");
    assert_eq!(spec.delimiter, ",");
    assert_eq!(spec.on_unknown_column, UnknownColumnPolicy::Fail);
    assert_eq!(spec.columns[0].hmac, Some(HmacSpec::default()));
    assert!(!spec.columns[0].quasi_identifier);
    let k = spec.k_anonymity.expect("k");
    assert_eq!((k.action, k.max_suppressed_percent), (KAnonymityAction::Report, 5));
}

#[test]
fn rules_hash_ignores_the_source_but_changes_with_any_rule() {
    let spec: PreparationSpec = serde_json::from_value(crd_json()).expect("spec");
    let hash = rules_sha256(&spec);
    assert_eq!(hash.len(), 64);
    assert_eq!(rules_sha256(&PreparationSpec { source: "moved/elsewhere.csv".into(), ..spec.clone() }), hash);

    let mut changes: Vec<PreparationSpec> = Vec::new();
    let mut change = |edit: &dyn Fn(&mut PreparationSpec)| {
        let mut changed = spec.clone();
        edit(&mut changed);
        changes.push(changed);
    };
    change(&|s| s.name = "labs".into());
    change(&|s| s.delimiter = ",".into());
    change(&|s| s.on_unknown_column = UnknownColumnPolicy::Fail);
    change(&|s| s.columns[0].hmac = Some(HmacSpec::default()));
    change(&|s| {
        s.columns[2].generalise_date =
            Some(GeneraliseDateSpec { to: DateGranularity::Year, band_years: None })
    });
    change(&|s| s.columns[3].truncate = Some(TruncateSpec { length: 3 }));
    change(&|s| s.columns[4].band = Some(BandSpec { width: 5, top_code: Some(90), bottom_code: Some(18) }));
    change(&|s| s.columns[5].rule = RuleKind::Keep);
    change(&|s| s.columns[7].quasi_identifier = false);
    change(&|s| s.columns.swap(0, 1));
    change(&|s| s.columns.pop().map(drop).unwrap_or_default());
    change(&|s| s.k_anonymity = None);
    change(&|s| s.k_anonymity.iter_mut().for_each(|k| k.max_suppressed_percent = 3));
    for changed in changes {
        assert_ne!(rules_sha256(&changed), hash, "{changed:?}");
    }
}

#[test]
fn rules_hash_does_not_depend_on_key_order() {
    let reordered: PreparationSpec = serde_json::from_str(
        r#"{"kAnonymity": {"maxSuppressedPercent": 2, "action": "SuppressRows", "k": 5}, "onUnknownColumn": "Drop",
            "columns": [{"hmac": {"caseInsensitive": true, "trim": false, "length": 20}, "rule": "Hmac", "name": "pid"},
                        {"rule": "Hmac", "name": "nhs"},
                        {"quasiIdentifier": true, "generaliseDate": {"bandYears": 5, "to": "YearBand"}, "rule": "GeneraliseDate", "name": "dob"},
                        {"truncate": {"length": 4}, "quasiIdentifier": true, "rule": "Truncate", "name": "postcode"},
                        {"band": {"bottomCode": 18, "topCode": 90, "width": 10}, "rule": "Band", "name": "age"},
                        {"rule": "Drop", "name": "notes"}, {"rule": "Suppress", "name": "gp"},
                        {"quasiIdentifier": true, "rule": "Keep", "name": "sex"}],
            "delimiter": ";", "source": "x.csv", "name": "visits"}"#,
    )
    .expect("spec");
    let spec: PreparationSpec = serde_json::from_value(crd_json()).expect("spec");
    assert_eq!(rules_sha256(&reordered), rules_sha256(&spec));
}

#[test]
fn key_fingerprint_is_a_short_sha256_that_never_reveals_the_key() {
    // python3 -c 'import hashlib; print(hashlib.sha256(b"permit-key-0123456789abcdef").hexdigest()[:16])'
    assert_eq!(key_fingerprint(KEY), "sha256:907970c995705f96");
    assert_ne!(key_fingerprint(b"another key"), key_fingerprint(KEY));
}

#[test]
fn a_misspelt_key_is_refused_naming_it_never_silently_ignored() {
    let mut spec = crd_json();
    let k = spec["kAnonymity"].take();
    spec["kAnonimity"] = k; // k-anonymity would silently be off
    let error = serde_json::from_value::<PreparationSpec>(spec).expect_err("refused").to_string();
    assert!(error.contains("unknown field `kAnonimity`"), "{error}");
    let mut spec = crd_json();
    spec["columns"][0]["hmac"]["lenght"] = json!(8);
    let error = serde_json::from_value::<PreparationSpec>(spec).expect_err("refused").to_string();
    assert!(error.contains("unknown field `lenght`"), "{error}");
}

#[test]
fn the_custodian_is_accepted_and_does_not_change_the_rules() {
    let plain: PreparationSpec = serde_json::from_value(crd_json()).expect("spec");
    let mut with = crd_json();
    with["custodian"] = json!("National Registry");
    let with: PreparationSpec = serde_json::from_value(with).expect("a DatasetGrant with a custodian");
    assert_eq!(rules_sha256(&plain), rules_sha256(&with));
}
