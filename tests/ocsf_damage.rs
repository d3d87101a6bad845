//! `--format ocsf` is valid whatever the values: rows of every table `gen` writes (the
//! hand-written writers of the mapped tables and every other table of the registry), damaged
//! at random by a proptest strategy — columns nulled, emptied, set to placeholders (`-`), to
//! numbers out of range (−1, 2^63, 2^64, 1e20), to the wrong JSON type, or removed; keys of
//! `AdditionalFields` damaged the same way — go through the real binary, and the project's
//! validator must accept every event. The validator runs once over all damaged rows (it is a
//! Python process), so the cases are drawn with proptest's deterministic runner rather than
//! one process per case; a failure prints the rejected events and their rows.

mod ocsf_check;

use ocsf_check::{process_ocsf, validate};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

/// One damage to one value.
#[derive(Debug, Clone)]
enum Damage {
    Null,
    Empty,
    Dash,
    Remove,
    Int(Value),
    Text(String),
    Bool,
    Object,
    Array,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Null),
        Just(Damage::Empty),
        Just(Damage::Dash),
        Just(Damage::Remove),
        prop_oneof![
            Just(json!(-1)),
            Just(json!(0)),
            Just(json!(65536)),
            Just(json!(i64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(9_223_372_036_854_775_808u64)),
            Just(json!(u64::MAX)),
            Just(json!(1e20)),
            Just(json!(3.5)),
            any::<i64>().prop_map(|n| json!(n)),
        ]
        .prop_map(Damage::Int),
        prop_oneof![
            Just("-1".to_string()),
            Just("18446744073709551616".to_string()),
            Just("not a time".to_string()),
            Just("0.0.0.0".to_string()),
            Just("::".to_string()),
            Just("2026-13-45T99:99:99Z".to_string()),
            "[ -~]{0,12}",
        ]
        .prop_map(Damage::Text),
        Just(Damage::Bool),
        Just(Damage::Object),
        Just(Damage::Array),
    ]
}

fn apply(o: &mut serde_json::Map<String, Value>, key: &str, d: &Damage) {
    let v = match d {
        Damage::Remove => {
            o.remove(key);
            return;
        }
        Damage::Null => Value::Null,
        Damage::Empty => json!(""),
        Damage::Dash => json!("-"),
        Damage::Int(n) => n.clone(),
        Damage::Text(t) => json!(t),
        Damage::Bool => json!(true),
        Damage::Object => json!({"x": 1}),
        Damage::Array => json!([1, "a"]),
    };
    o.insert(key.to_string(), v);
}

/// Damages `row.properties` (and its `AdditionalFields` when it is a JSON object in a string):
/// each damage picks a column by index (modulo the column count).
fn damage_row(row: &mut Value, damages: &[(usize, Damage)], additional: &[(usize, Damage)]) {
    let props = row["properties"].as_object_mut().unwrap();
    let keys: Vec<String> = props.keys().cloned().collect();
    for (i, d) in damages {
        let k = &keys[i % keys.len()];
        apply(props, k, d);
    }
    if let Some(Value::String(text)) = props.get("AdditionalFields") {
        if let Ok(Value::Object(mut af)) = serde_json::from_str::<Value>(text) {
            let keys: Vec<String> = af.keys().cloned().collect();
            if !keys.is_empty() {
                for (i, d) in additional {
                    apply(&mut af, &keys[i % keys.len()], d);
                }
                props.insert(
                    "AdditionalFields".into(),
                    Value::String(Value::Object(af).to_string()),
                );
            }
        }
    }
}

fn gen_rows(table: &str, seed: u64, n: u64) -> Vec<Value> {
    let mut out = Vec::new();
    mde_relay::gen::generate(table, seed, mde_relay::gen::Limit::Rows(n), &mut out).unwrap();
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn randomly_damaged_rows_of_every_table_give_valid_events() {
    let strategy = (
        prop::collection::vec((any::<usize>(), damage()), 1..6),
        prop::collection::vec((any::<usize>(), damage()), 0..3),
    );
    let config = Config::default();
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[20; 32]));
    let mut rows = Vec::new();
    for table in mde_relay::gen::gen_tables() {
        // The mapped tables get more cases than the rest (which are Base Events today).
        let mapped = mde_relay::gen::SUPPORTED_TABLES.contains(&table);
        let n = if mapped { 300 } else { 20 };
        for mut row in gen_rows(table, 7, n) {
            let (d, a) = strategy.new_tree(&mut runner).unwrap().current();
            damage_row(&mut row, &d, &a);
            rows.push(row);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.json");
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, &text).unwrap();
    let events = process_ocsf(&path);
    // For checking by hand with another validator.
    if let Some(keep) = std::env::var_os("OCSF_DAMAGE_KEEP") {
        std::fs::write(&keep, &events).unwrap();
        std::fs::write(
            std::path::Path::new(&keep).with_extension("rows.json"),
            &text,
        )
        .unwrap();
    }
    let s = validate(&events);
    let detail: Vec<String> = s
        .errors
        .iter()
        .map(|e| {
            let line = e["line"].as_u64().unwrap() as usize;
            format!(
                "{}\n  row: {:.600}",
                serde_json::to_string(&e["problems"]).unwrap(),
                rows[line - 1].to_string()
            )
        })
        .collect();
    assert!(
        s.errors.is_empty(),
        "events from damaged rows that are invalid OCSF (of {}): {:#?}\nexamples:\n{}",
        s.events,
        s.problems,
        detail.join("\n")
    );
    assert_eq!(s.events, rows.len() as u64);
}
