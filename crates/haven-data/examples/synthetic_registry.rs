//! A synthetic cancer registry extract, for the demo and the preparation benchmark: realistic
//! columns (identifiers, names, dates, postcodes, diagnoses, measurements, free text), no real
//! person. Deterministic for a given seed.
//!
//!   cargo run --release -p haven-data --example synthetic_registry -- ROWS OUT.csv [COLUMNS] [SEED]
//!
//! COLUMNS is a comma-separated subset of the header, in the order wanted (default: all).

use std::io::{BufWriter, Write};

const HEADER: [&str; 20] = [
    "nhs_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "ethnicity",
    "diagnosis_date",
    "icd10_code",
    "stage",
    "age_at_diagnosis",
    "treatment",
    "hospital_code",
    "gp_practice",
    "height_cm",
    "weight_kg",
    "smoking_status",
    "deprivation_decile",
    "survival_days",
    "free_text_notes",
];
const GIVEN: [&str; 12] = [
    "Olivia", "Amelia", "Isla", "Ava", "Mohammed", "Noah", "Oliver", "George", "Zoë", "Siân", "Aoife", "José",
];
const FAMILY: [&str; 10] =
    ["Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans", "Khan", "O'Brien", "Nowak"];
const DISTRICTS: [&str; 6] = ["LS1", "LS6", "BD7", "HX1", "YO10", "HG2"];
const ICD10: [&str; 8] = ["C18.7", "C34.1", "C50.9", "C61", "C43.5", "C25.0", "C67.9", "C71.1"];
const TREATMENTS: [&str; 5] =
    ["surgery", "chemotherapy", "radiotherapy", "immunotherapy", "\"surgery, then chemotherapy\""];
const ETHNICITY: [&str; 5] = ["A", "B", "C", "D", "Z"];
const SMOKING: [&str; 3] = ["never", "former", "current"];
const NOTES: [&str; 4] = [
    "Referred via two-week wait pathway.",
    "\"Patient reports fatigue; \"\"mild\"\" per GP\"",
    "",
    "\"Follow-up booked, see letter dated 2024-03-02.\"",
];

/// SplitMix64: a few lines give reproducible synthetic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: synthetic_registry ROWS OUT.csv [COLUMNS] [SEED]";
    let rows: u64 = args.get(1).ok_or(usage)?.parse()?;
    let out = args.get(2).ok_or(usage)?;
    let columns: Vec<usize> = match args.get(3).filter(|c| !c.is_empty()) {
        Some(list) => list
            .split(',')
            .map(|name| HEADER.iter().position(|h| *h == name).ok_or(format!("unknown column {name}")))
            .collect::<Result<_, _>>()?,
        None => (0..HEADER.len()).collect(),
    };
    let mut rng = Rng(args.get(4).map_or(Ok(2026), |s| s.parse())?);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    writeln!(out, "{}", columns.iter().map(|&c| HEADER[c]).collect::<Vec<_>>().join(","))?;
    let mut fields: Vec<String> = vec![String::new(); HEADER.len()];
    for _ in 0..rows {
        let birth_year = 1935 + rng.below(60);
        let diagnosis_year = 2015 + rng.below(10);
        let age = diagnosis_year - birth_year;
        fields[0] = format!("{}", 4_000_000_000 + rng.below(5_000_000_000));
        fields[1] = rng.pick(&GIVEN).to_owned();
        fields[2] = rng.pick(&FAMILY).to_owned();
        fields[3] = format!("{birth_year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
        fields[4] = rng.pick(&["F", "M"]).to_owned();
        fields[5] = format!(
            "{} {}{}{}",
            rng.pick(&DISTRICTS),
            rng.below(10),
            (b'A' + rng.below(26) as u8) as char,
            (b'A' + rng.below(26) as u8) as char
        );
        fields[6] = rng.pick(&ETHNICITY).to_owned();
        fields[7] = format!("{diagnosis_year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
        fields[8] = rng.pick(&ICD10).to_owned();
        fields[9] = (1 + rng.below(4)).to_string();
        fields[10] = age.to_string();
        fields[11] = rng.pick(&TREATMENTS).to_owned();
        fields[12] = format!("RR{}", 800 + rng.below(40));
        fields[13] = format!("B{:05}", rng.below(90_000));
        fields[14] = format!("{}.{}", 150 + rng.below(50), rng.below(10));
        fields[15] = format!("{}.{}", 45 + rng.below(70), rng.below(10));
        fields[16] = rng.pick(&SMOKING).to_owned();
        fields[17] = (1 + rng.below(10)).to_string();
        fields[18] = if rng.below(4) == 0 { String::new() } else { rng.below(3650).to_string() };
        fields[19] = rng.pick(&NOTES).to_owned();
        let line: Vec<&str> = columns.iter().map(|&c| fields[c].as_str()).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    out.flush()?;
    Ok(())
}
