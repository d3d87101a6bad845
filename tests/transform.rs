//! KQL transforms end to end: `process --transform` in all three formats (ids unchanged,
//! filtered rows counted, not dead-lettered), start-up errors of `process` and `serve`,
//! `transform check` / `transform test`, and the drain's accounting (checkpoint past filtered
//! rows, `filtered` in the checkpoint and in `status`).

mod common;
mod relay;

use mde_relay::deliver::{Delivery, Limits};
use mde_relay::drain::{Contention, DrainSettings};
use mde_relay::pipeline::Filter;
use mde_relay::sink::file::FileSink;
use mde_relay::source::{local::DirSource, BlobKey, Scoped};
use mde_relay::state::{local::DirCheckpointStore, CheckpointStore};
use mde_relay::transform::Transforms;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mde-relay"));
    c.env_remove("RELAY_TRANSFORMS");
    c
}

fn gen(dir: &Path, table: &str, rows: u32) -> PathBuf {
    let p = dir.join(format!("{table}.json"));
    let o = bin()
        .args([
            "gen",
            "--table",
            table,
            "--rows",
            &rows.to_string(),
            "--seed",
            "7",
            "--out",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    p
}

fn process(inputs: &[&Path], format: &str, transform: Option<&Path>, out: &Path) -> Output {
    let mut c = bin();
    c.arg("process")
        .args(inputs)
        .args(["--format", format, "--out"])
        .arg(out);
    if let Some(t) = transform {
        c.arg("--transform").arg(t);
    }
    c.output().unwrap()
}

fn events(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const RULES: &str = r#"
// Drop the noisiest ActionType, keep the public ones anyway.
DeviceNetworkEvents
| where ActionType !in ("ConnectionSuccess", "ConnectionRequest") or RemoteIPType == "Reserved"
| project-away InitiatingProcessCommandLine
DeviceProcessEvents | project-away ProcessCommandLine, InitiatingProcessVersionInfo*
* | extend RelayNote = "transformed"
"#;

#[test]
fn process_applies_transforms_to_every_format_with_the_original_ids() {
    let dir = tempfile::tempdir().unwrap();
    let net = gen(dir.path(), "DeviceNetworkEvents", 400);
    let procs = gen(dir.path(), "DeviceProcessEvents", 100);
    let rules = dir.path().join("rules.kql");
    std::fs::write(&rules, RULES).unwrap();
    let inputs = [net.as_path(), procs.as_path()];

    // Baseline: normalized events without a transform, by id.
    let base_out = dir.path().join("base.ndjson");
    let o = process(&inputs, "normalized", None, &base_out);
    assert!(o.status.success());
    let base: HashMap<String, Value> = events(&base_out)
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e))
        .collect();
    assert_eq!(base.len(), 500);
    let kept = |e: &Value| {
        e["table"] != "DeviceNetworkEvents"
            || !["ConnectionSuccess", "ConnectionRequest"]
                .contains(&e["properties"]["ActionType"].as_str().unwrap())
            || e["properties"]["RemoteIPType"] == "Reserved"
    };
    let want = base.values().filter(|e| kept(e)).count();
    assert!(
        want < 450 && want > 100,
        "the sample must exercise the filter: {want}"
    );
    assert!(
        base.values()
            .any(|e| e["properties"]["InitiatingProcessCommandLine"].is_string()),
        "the column to drop is there without the transform"
    );

    for format in ["normalized", "raw", "ocsf"] {
        let out = dir.path().join(format!("{format}.ndjson"));
        let o = process(&inputs, format, Some(&rules), &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{format}: {err}");
        let filtered = 500 - want;
        assert!(
            err.contains(&format!(
                "500 rows, {want} events, 0 dead-lettered, 0 skipped, {filtered} filtered ("
            )),
            "{format}: {err}"
        );
        assert!(
            !dir.path()
                .join(format!("{format}.ndjson.deadletter.ndjson"))
                .exists()
                || std::fs::read_to_string(
                    dir.path()
                        .join(format!("{format}.ndjson.deadletter.ndjson"))
                )
                .unwrap()
                .is_empty(),
            "filtered rows are not dead letters"
        );
        let got = events(&out);
        assert_eq!(got.len(), want, "{format}");
        for e in &got {
            let id = e
                .get("id")
                .or_else(|| e.pointer("/metadata/uid"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{format}: no id in {e}"));
            let b = base
                .get(id)
                .unwrap_or_else(|| panic!("{format}: id {id} is not an original row's"));
            assert!(kept(b), "{format}: {id} should have been filtered");
            let text = e.to_string();
            let dropped = if b["table"] == "DeviceNetworkEvents" {
                "InitiatingProcessCommandLine"
            } else {
                "ProcessCommandLine"
            };
            for col in [dropped] {
                let Some(v) = b["properties"][col].as_str() else {
                    continue;
                };
                let quoted = serde_json::to_string(v).unwrap();
                let needle = &quoted[1..quoted.len() - 1];
                let mut rest = b.clone();
                rest["properties"].as_object_mut().unwrap().remove(col);
                // Only a value no other column of the row carries tells anything.
                if !rest.to_string().contains(needle) {
                    assert!(
                        !text.contains(needle),
                        "{format}: {col} value left in {text}"
                    );
                }
            }
            match format {
                "normalized" => {
                    assert_eq!(e["properties"]["RelayNote"], "transformed");
                    assert!(
                        e["properties"]
                            .get("InitiatingProcessVersionInfoCompanyName")
                            .is_none()
                            || e["table"] != "DeviceProcessEvents"
                    );
                    // Pivots and JSON columns still come out as without the transform.
                    assert_eq!(e["action_type"], b["action_type"]);
                    assert_eq!(
                        e["properties"]["AdditionalFields"],
                        b["properties"]["AdditionalFields"]
                    );
                    assert_eq!(e["timestamp"], b["timestamp"]);
                }
                "raw" => assert_eq!(e["properties"]["RelayNote"], "transformed"),
                _ => {}
            }
        }
    }
}

#[test]
fn a_bad_transform_stops_process_and_serve_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let net = gen(dir.path(), "DeviceNetworkEvents", 5);
    let rules = dir.path().join("bad.kql");
    std::fs::write(
        &rules,
        "DeviceNetworkEvents\n| where RemoteIp == \"1.2.3.4\"\n",
    )
    .unwrap();
    let out = dir.path().join("out.ndjson");
    let o = process(&[&net], "normalized", Some(&rules), &out);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("transform line 2, col 9: unknown column 'RemoteIp' in DeviceNetworkEvents (did you mean RemoteIP?)"),
        "{err}"
    );
    assert!(
        err.contains("  | | where RemoteIp == \"1.2.3.4\"\n  |         ^"),
        "{err}"
    );
    assert!(!out.exists(), "nothing was opened or written");

    // Inline through the setting, a syntax error.
    let o = bin()
        .arg("process")
        .arg(&net)
        .arg("--out")
        .arg(&out)
        .env(
            "RELAY_TRANSFORMS",
            "DeviceNetworkEvents | where ActionType ==",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("transform line 1, col 42: expected an expression"),
        "{err}"
    );
    assert!(!out.exists());

    // serve: the handler's settings are checked before it listens or reads.
    let o = bin()
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "1")
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .env("MdeExportStorage", "UseDevelopmentStorage=true")
        .env("RELAY_TRANSFORMS", "DeviceEvents | summarize count()")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("RELAY_TRANSFORMS: 1 problem"), "{err}");
    assert!(
        err.contains("operator 'summarize' is not in the supported subset"),
        "{err}"
    );
    let o = bin()
        .arg("serve")
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "1")
        .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
        .env("MdeExportStorage", "UseDevelopmentStorage=true")
        .env("RELAY_TRANSFORMS", dir.path().join("missing.kql"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("RELAY_TRANSFORMS: cannot read transform file"),
        "{err}"
    );
}

#[test]
fn transform_check_and_test_commands() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.kql");
    std::fs::write(&rules, RULES).unwrap();
    let o = bin()
        .args(["transform", "check"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ok (2 table rule(s): DeviceNetworkEvents, DeviceProcessEvents)"),
        "{out}"
    );

    let bad = dir.path().join("bad.kql");
    std::fs::write(&bad, "DeviceEvents | where tolowr(FileName) == 'x'").unwrap();
    let o = bin()
        .args(["transform", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("transform line 1, col 22: unknown function 'tolowr' (did you mean tolower?)"),
        "{err}"
    );

    let net = gen(dir.path(), "DeviceNetworkEvents", 300);
    let samples = dir.path().join("samples");
    std::fs::create_dir(&samples).unwrap();
    std::fs::rename(&net, samples.join("net.json")).unwrap();
    gen(&samples, "DeviceEvents", 50);
    let o = bin()
        .args(["transform", "test"])
        .arg(&rules)
        .arg(&samples)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "TABLE", "ROWS", "IN", "ROWS", "OUT", "FILTERED", "BYTES", "IN", "BYTES", "OUT",
            "SAVED"
        ]
    );
    let row = |t: &str| {
        lines
            .iter()
            .find(|l| l[0] == t)
            .unwrap_or_else(|| panic!("{out}"))
    };
    let n = row("DeviceNetworkEvents");
    assert_eq!(n[1], "300");
    let (kept, filtered): (u64, u64) = (n[2].parse().unwrap(), n[3].parse().unwrap());
    assert!(filtered > 0 && kept + filtered == 300, "{out}");
    assert!(n[5].parse::<u64>().unwrap() < n[4].parse::<u64>().unwrap());
    // DeviceEvents only get the * rule (a column added): more bytes out than in.
    let d = row("DeviceEvents");
    assert_eq!((d[1], d[2], d[3]), ("50", "50", "0"));
    assert!(d[5].parse::<u64>().unwrap() > d[4].parse::<u64>().unwrap());
}

#[tokio::test]
async fn the_drain_checkpoints_past_filtered_rows_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    const PREFIX: &str = "insights-logs-advancedhunting-";
    let key = BlobKey::new(
        "insights-logs-advancedhunting-deviceprocessevents",
        format!(
            "tenantId={}/y=2026/m=01/d=01/h=00/m=00/PT1H.json",
            relay::TENANT
        ),
    );
    let (data, ids) = relay::rows(0..40, 3);
    let path = dir.path().join("src").join(&key.container).join(&key.blob);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &data).unwrap();
    // The drain's own view of the same directories, for the checks after it.
    let src = Scoped::new(Arc::new(DirSource::new(dir.path().join("src"))), PREFIX);
    let store: Arc<dyn CheckpointStore> =
        Arc::new(DirCheckpointStore::open(dir.path().join("state")).unwrap());
    let events = dir.path().join("events.ndjson");
    let sink = Arc::new(FileSink::open(&events, true, false).unwrap());
    let dead_path = dir.path().join("dead.ndjson");
    // Rows whose ReportId is odd are dropped; the rest lose ProcessCommandLine.
    let t = Transforms::parse(
        "DeviceProcessEvents | where toint(strcat(ReportId)) in (dynamic([639199803770463703, 639199803770463705])) or DeviceId endswith '0' | project-away ProcessCommandLine",
        "test",
    )
    .unwrap();
    let settings = DrainSettings {
        chunk: 1000,
        close_grace: Duration::from_secs(0),
        filter: Filter {
            transforms: Some(Arc::new(t)),
            ..Filter::default()
        },
        ..DrainSettings::default()
    };
    let limits = Limits {
        max_events: 3,
        ..Limits::default()
    };
    let drainer = common::drain::local_drainer(
        dir.path(),
        PREFIX,
        &dead_path,
        Delivery::new(sink, limits),
        settings,
    );
    let report = drainer
        .drain(&key, Contention::Wait(Duration::from_secs(10)), None, None)
        .await
        .unwrap();
    // Kept: ReportId ...703 and ...705 (i = 0, 2), and DeviceId dev-10, dev-20, dev-30.
    let want: Vec<&String> = [0usize, 2, 10, 20, 30].iter().map(|&i| &ids[i]).collect();
    let (got, _) = relay::event_ids(&events);
    assert_eq!(
        got.iter().collect::<Vec<_>>(),
        want,
        "ids are the original rows'"
    );
    assert_eq!(report.stats.rows, 40);
    assert_eq!(report.stats.events, 5);
    assert_eq!(report.stats.filtered, 35);
    assert_eq!(report.stats.dead_lettered, 0);
    assert!(!dead_path.exists() || std::fs::read_to_string(&dead_path).unwrap().is_empty());
    let lines = relay::rows(0..40, 3).0;
    let filtered_bytes: u64 = String::from_utf8(lines)
        .unwrap()
        .split("\r\n")
        .enumerate()
        .filter(|(i, l)| !l.is_empty() && ![0, 2, 10, 20, 30].contains(i))
        .map(|(_, l)| l.len() as u64)
        .sum();
    assert_eq!(report.stats.filtered_bytes, filtered_bytes);
    let cp = store.get(&key).await.unwrap().unwrap().checkpoint;
    assert_eq!(
        cp.offset,
        data.len() as u64,
        "the checkpoint moved past the filtered rows"
    );
    assert_eq!((cp.rows, cp.events, cp.dead_lettered), (40, 5, 0));
    assert_eq!((cp.filtered, cp.filtered_bytes), (35, filtered_bytes));
    for e in events_of(&events) {
        assert!(e["properties"].get("ProcessCommandLine").is_none());
        assert!(
            e["properties"]["AdditionalFields"].is_object(),
            "JSON columns still decoded"
        );
    }

    // status sums the checkpoints' filtered counts per table.
    let dl = mde_relay::deadletter::stored::DeadLetterStore::file(&dir.path().join("dl.ndjson"));
    let st = mde_relay::status::collect(&src, store.as_ref(), &dl, 48, chrono::Utc::now())
        .await
        .unwrap();
    let t = &st.tables[0];
    assert_eq!((t.filtered_rows, t.filtered_bytes), (35, filtered_bytes));
    assert!(mde_relay::status::render_table(&st).contains("FILTERED"));
}

fn events_of(p: &Path) -> Vec<Value> {
    events(p)
}
