//! The Elasticsearch sink against a real OpenSearch node (tests/opensearch/, OpenSearch 2.19
//! from Maven Central, started by `scripts/opensearch.sh`; `.ci/test` starts two and sets
//! `OPENSEARCH_URL` and `OPENSEARCH_TIGHT_URL`).
//!
//! - With the relay's index templates, rows of every table `gen` knows, plus a file in which
//!   every JSON column changes shape from row to row, are indexed with no mapping error and no
//!   dead letter, each event once (counted by `_id`); a second run adds nothing (409s count as
//!   delivered). Without the templates the shape-changing file is refused in part
//!   (`mapper_parsing_exception`); with them but without the sink's `{"value": …}` wrapping,
//!   JSON column values that are not objects are taken but not indexed (not searchable).
//! - A real drain: exactly once, and a re-delivery of the same export adds nothing.
//! - Per-item failures the engine really gives (a closed index, a leaf string too long for
//!   `flat_object`, an event over `http.max_content_length`) are dead-lettered with the
//!   engine's error type while the other events are indexed.
//! - The write thread pool of the second node is tiny (`thread_pool.write.queue_size=1`): its
//!   429s are retried and every event still arrives once.

mod common;
#[allow(unused_imports)] // its `serve` re-export is for the other sink tests
mod http_sink;
mod relay;

use http_sink::Blob;
use mde_relay::drain::Outcome;
use mde_relay::sink::elasticsearch::{EsConfig, EsSink};
use mde_relay::sink::retry::RetryPolicy;
use mde_relay::sink::Sink;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const HOW: &str = "start one with `scripts/opensearch.sh start` (and `scripts/opensearch.sh start tight thread_pool.write.size=1 thread_pool.write.queue_size=1 http.max_content_length=200kb` for the second) and export the URLs it prints, as .ci/test does";

/// The main node's URL; fails (never skips) without one.
fn node() -> String {
    match std::env::var("OPENSEARCH_URL") {
        Ok(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => panic!("OPENSEARCH_URL is not set: these tests need a real OpenSearch node; {HOW}"),
    }
}

/// The node with a tiny write queue and a 200 kB request limit.
fn tight_node() -> String {
    match std::env::var("OPENSEARCH_TIGHT_URL") {
        Ok(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => panic!(
            "OPENSEARCH_TIGHT_URL is not set: the throttling and request-size tests need a second node; {HOW}"
        ),
    }
}

async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = c.request(method, url);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&b).unwrap());
    }
    let resp = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}; {HOW}"));
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

/// Deletes the indices of an earlier run of a test (the node may be reused between runs).
async fn fresh(url: &str, pattern: &str) {
    let (s, v) = call(
        reqwest::Method::DELETE,
        &format!("{url}/{pattern}?expand_wildcards=all"),
        None,
    )
    .await;
    assert!(s == 200 || s == 404, "{v}");
}

async fn refresh(url: &str, pattern: &str) {
    call(
        reqwest::Method::POST,
        &format!("{url}/{pattern}/_refresh?ignore_unavailable=true"),
        None,
    )
    .await;
}

/// Documents per index matching `pattern`.
async fn counts(url: &str, pattern: &str) -> BTreeMap<String, u64> {
    refresh(url, pattern).await;
    let (_, v) = call(
        reqwest::Method::GET,
        &format!("{url}/_cat/indices/{pattern}?format=json&h=index,docs.count"),
        None,
    )
    .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["index"].as_str().unwrap().to_string(),
                        i["docs.count"].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How many of `ids` are in `index` (an `ids` query), and how many documents it holds.
async fn found(url: &str, index: &str, ids: &[String]) -> (u64, u64) {
    refresh(url, index).await;
    let (s, v) = call(
        reqwest::Method::POST,
        &format!("{url}/{index}/_count"),
        Some(json!({"query": {"ids": {"values": ids}}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, all) = call(reqwest::Method::GET, &format!("{url}/{index}/_count"), None).await;
    (v["count"].as_u64().unwrap(), all["count"].as_u64().unwrap())
}

fn relay(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mde-relay"));
    c.args(args).env_remove("RELAY_SINK");
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `gen` rows of every table it knows, one file per table.
fn gen_every_table(dir: &Path, rows: u64) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for t in mde_relay::gen::gen_tables() {
        let mut f = std::fs::File::create(dir.join(format!("{t}.json"))).unwrap();
        mde_relay::gen::generate(t, 7, mde_relay::gen::Limit::Rows(rows), &mut f).unwrap();
        n += 1;
    }
    n
}

/// The shapes every JSON column takes in turn: objects whose keys change type (number, text,
/// object, array, bool), then an array of strings, text that is not JSON, a number, null, an
/// array of objects, an empty object and an empty array. Written as the export writes JSON
/// columns (JSON text in a string), except the number and null.
fn shapes() -> Vec<Value> {
    let text = |v: Value| Value::String(v.to_string());
    vec![
        text(json!({"Size": 1, "Name": "a", "Nested": {"x": 1}})),
        text(json!({"Size": "large", "Name": 5, "Nested": "text"})),
        text(
            json!({"Size": {"bytes": 10}, "Name": ["a", "b"], "Nested": [1, "two", {"three": 3}]}),
        ),
        text(json!(["10.0.0.1", "fe80::1"])),
        json!("plain text, not JSON"),
        json!(42),
        Value::Null,
        text(json!([{"k": 1}, {"k": "v", "deeper": {"k": [true]}}])),
        text(json!({"Size": true, "Name": null, "Nested": {"x": "y"}})),
        text(json!({})),
        text(json!([])),
    ]
}

/// For every table `gen` knows: rows whose every JSON column goes through [`shapes`].
fn gen_shifting(dir: &Path) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let shapes = shapes();
    let mut n = 0;
    for t in mde_relay::gen::gen_tables() {
        let info = mde_relay::tables::lookup(t).unwrap();
        let mut raw = Vec::new();
        mde_relay::gen::generate(
            t,
            11,
            mde_relay::gen::Limit::Rows(shapes.len() as u64),
            &mut raw,
        )
        .unwrap();
        let mut out = Vec::new();
        for (i, line) in raw
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .enumerate()
        {
            let mut row: Value = serde_json::from_slice(line).unwrap();
            let props = row["properties"].as_object_mut().unwrap();
            let mut cols: Vec<&str> = info.json_columns.to_vec();
            if !cols.contains(&"AdditionalFields") {
                cols.push("AdditionalFields");
            }
            for (k, c) in cols.iter().enumerate() {
                // Each column at its own point of the cycle, so rows differ column by column.
                props.insert(c.to_string(), shapes[(i + k) % shapes.len()].clone());
            }
            out.extend_from_slice(serde_json::to_string(&row).unwrap().as_bytes());
            out.extend_from_slice(b"\r\n");
            n += 1;
        }
        std::fs::write(dir.join(format!("{t}.json")), out).unwrap();
    }
    n
}

/// The events `process` makes of `dir`: (table, id) of each.
fn events_of(dir: &Path) -> Vec<(String, String)> {
    let out = dir.with_extension("events.ndjson");
    let (ok, _, err) = relay(
        &[
            "process",
            "--out",
            out.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["table"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn process_es(
    url: &str,
    index: &str,
    inputs: &[&Path],
    dead: &Path,
    envs: &[(&str, &str)],
) -> String {
    let mut args = vec![
        "process",
        "--sink",
        "elasticsearch",
        "--es-url",
        url,
        "--es-index",
        index,
        "--dead-letter",
        dead.to_str().unwrap(),
    ];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let (ok, _, err) = relay(&args, envs);
    assert!(ok, "{err}");
    err
}

fn dead(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts each event is in its table's index exactly once, and the index holds nothing else.
async fn exactly_once(url: &str, index: &str, events: &[(String, String)]) {
    let mut by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (t, id) in events {
        by_table.entry(t).or_default().push(id.clone());
    }
    for (t, ids) in by_table {
        let distinct: HashSet<&String> = ids.iter().collect();
        let name = index.replace("{table}", &t.to_ascii_lowercase());
        let (hit, all) = found(url, &name, &ids).await;
        assert_eq!(
            (hit, all),
            (distinct.len() as u64, distinct.len() as u64),
            "{name}: every event once by _id"
        );
    }
}

#[tokio::test]
async fn with_the_templates_every_table_and_every_json_shape_is_indexed_once() {
    let url = node();
    fresh(&url, "it-tpl-*").await;
    let dir = tempfile::tempdir().unwrap();
    let (every, shifting) = (dir.path().join("every"), dir.path().join("shifting"));
    let tables = gen_every_table(&every, 25);
    let shifted = gen_shifting(&shifting);
    let index = "it-tpl-{table}";

    // Install (twice: the second changes nothing and says so).
    let (ok, out, err) = relay(
        &[
            "setup",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            index,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("OpenSearch 2.19"), "{out}");
    let (ok, again, err) = relay(
        &[
            "setup",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            index,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        again.contains(&format!("({} were already", tables * 2 + 4)),
        "{again}"
    );

    let mut events = events_of(&every);
    events.extend(events_of(&shifting));
    assert_eq!(events.len(), tables * 25 + shifted);
    let dead_path = dir.path().join("dead.ndjson");
    let err = process_es(&url, index, &[&every, &shifting], &dead_path, &[]);
    assert!(err.contains(" 0 dead-lettered"), "{err}");
    assert!(dead(&dead_path).is_empty());
    exactly_once(&url, index, &events).await;

    // The mapping is the template's: typed columns, flat_object JSON columns.
    let (_, m) = call(
        reqwest::Method::GET,
        &format!("{url}/it-tpl-deviceprocessevents/_mapping"),
        None,
    )
    .await;
    let p = &m["it-tpl-deviceprocessevents"]["mappings"]["properties"];
    assert_eq!(p["@timestamp"]["type"], "date");
    assert_eq!(p["properties"]["properties"]["ReportId"]["type"], "long");
    assert_eq!(
        p["properties"]["properties"]["AdditionalFields"]["type"],
        "flat_object"
    );

    // The array-of-strings shape, wrapped as {"value": […]}, can be searched.
    assert!(address_hits(&url, "it-tpl-deviceevents").await >= 1);

    // The same export again: every create answers 409, counted as delivered; nothing added.
    let before = counts(&url, "it-tpl-*").await;
    let err = process_es(&url, index, &[&every, &shifting], &dead_path, &[]);
    assert!(err.contains(" 0 dead-lettered"), "{err}");
    assert_eq!(counts(&url, "it-tpl-*").await, before);
    exactly_once(&url, index, &events).await;
}

#[tokio::test]
async fn without_the_templates_or_the_wrapping_the_shifting_file_is_refused_in_part() {
    let url = node();
    fresh(&url, "it-none-*").await;
    fresh(&url, "it-nowrap-*").await;
    let dir = tempfile::tempdir().unwrap();
    let shifting = dir.path().join("shifting");
    let rows = gen_shifting(&shifting);

    // No template matches it-none-*: dynamic mapping refuses rows whose shapes differ.
    let dead_none = dir.path().join("dead-none.ndjson");
    process_es(&url, "it-none-{table}", &[&shifting], &dead_none, &[]);
    let refused = dead(&dead_none);
    assert!(
        refused.len() > rows / 10,
        "only {} of {rows} refused without templates",
        refused.len()
    );
    assert!(refused.iter().all(|d| d["rejected_by"] == "elasticsearch"));
    assert!(
        refused.iter().any(|d| d["reason"]
            .as_str()
            .unwrap()
            .contains("mapper_parsing_exception")),
        "{:?}",
        refused[0]
    );

    // Templates, but JSON column values sent as they are: OpenSearch takes the ones that are
    // not objects (index.mapping.ignore_malformed covers flat_object) but leaves them out of
    // the index, so they cannot be searched; wrapped as {"value": …} they can (the first test).
    let index = "it-nowrap-{table}";
    let (ok, _, err) = relay(
        &[
            "setup",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            index,
        ],
        &[],
    );
    assert!(ok, "{err}");
    let dead_nowrap = dir.path().join("dead-nowrap.ndjson");
    let err = process_es(
        &url,
        index,
        // One table is enough to show it (every table would cost an index creation each).
        &[&shifting.join("DeviceEvents.json")],
        &dead_nowrap,
        &[("RELAY_ES_JSON_OBJECTS", "false")],
    );
    assert!(err.contains(" 0 dead-lettered"), "{err}");
    let idx = "it-nowrap-deviceevents";
    assert_eq!(
        address_hits(&url, idx).await,
        0,
        "an unwrapped array was indexed"
    );
    refresh(&url, idx).await;
    let (_, v) = call(
        reqwest::Method::POST,
        &format!("{url}/{idx}/_search"),
        Some(json!({"query": {"match_all": {}}, "size": 100})),
    )
    .await;
    assert!(
        v["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["_source"]["properties"]["AdditionalFields"]
                == json!(["10.0.0.1", "fe80::1"])),
        "the unwrapped value is kept in _source"
    );
}

/// Documents of `index` whose AdditionalFields holds the address `fe80::1` of the
/// array-of-strings shape (wrapped: `AdditionalFields.value`).
async fn address_hits(url: &str, index: &str) -> u64 {
    refresh(url, index).await;
    let (s, v) = call(
        reqwest::Method::POST,
        &format!("{url}/{index}/_count"),
        Some(json!({"query": {"term": {"properties.AdditionalFields.value": "fe80::1"}}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["count"].as_u64().unwrap()
}

fn sink_config(url: &str, index: &str) -> EsConfig {
    let mut c = EsConfig::new(url::Url::parse(url).unwrap());
    c.index = index.into();
    c.http.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(120),
    };
    c
}

#[tokio::test]
async fn a_real_drain_indexes_each_event_once_and_a_redelivery_adds_nothing() {
    let url = node();
    fresh(&url, "it-drain-*").await;
    let blob = Blob::new(400, 100);
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(sink_config(&url, "it-drain-{table}")).unwrap());
    let r = blob.drain(sink.clone(), 150).await.unwrap();
    assert_eq!(r.outcome, Outcome::Drained);
    assert_eq!(r.stats.dead_lettered, 0);
    let index = "it-drain-deviceprocessevents";
    assert_eq!(found(&url, index, &blob.ids).await, (400, 400));
    // Checkpointed: nothing to do.
    assert_eq!(
        blob.drain(sink, 150).await.unwrap().outcome,
        Outcome::UpToDate
    );
    // The export delivers the same rows again (another blob, fresh checkpoints): 409s only.
    let again = Blob::new(400, 100);
    assert_eq!(again.ids, blob.ids);
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(sink_config(&url, "it-drain-{table}")).unwrap());
    let r = again.drain(sink, 150).await.unwrap();
    assert_eq!((r.outcome, r.stats.dead_lettered), (Outcome::Drained, 0));
    assert_eq!(found(&url, index, &blob.ids).await, (400, 400));
}

#[tokio::test]
async fn refused_items_are_dead_lettered_with_the_engines_error_type() {
    let url = node();
    fresh(&url, "it-fail-*").await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // DeviceProcessEvents goes to a closed index; DeviceEvents to an open one, where one row's
    // AdditionalFields holds a string too long for flat_object (Lucene's 32766-byte term limit).
    // The templates come from RELAY_ES_INSTALL_TEMPLATES=true this time.
    let index = "it-fail-{table}";
    let closed = "it-fail-deviceprocessevents";
    let (s, v) = call(reqwest::Method::PUT, &format!("{url}/{closed}"), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        reqwest::Method::POST,
        &format!("{url}/{closed}/_close"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut f = std::fs::File::create(input.join("dpe.json")).unwrap();
    mde_relay::gen::generate(
        "DeviceProcessEvents",
        3,
        mde_relay::gen::Limit::Rows(5),
        &mut f,
    )
    .unwrap();
    let mut raw = Vec::new();
    mde_relay::gen::generate("DeviceEvents", 3, mde_relay::gen::Limit::Rows(10), &mut raw).unwrap();
    let mut lines: Vec<Value> = raw
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    lines[4]["properties"]["AdditionalFields"] =
        Value::String(json!({"Blob": "x".repeat(40_000)}).to_string());
    let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    std::fs::write(input.join("de.json"), text).unwrap();

    let dead_path = dir.path().join("dead.ndjson");
    // Gzip bodies too: the engine takes `Content-Encoding: gzip` requests.
    let err = process_es(
        &url,
        index,
        &[&input],
        &dead_path,
        &[
            ("RELAY_ES_GZIP", "true"),
            ("RELAY_ES_INSTALL_TEMPLATES", "true"),
        ],
    );
    assert!(
        err.contains("elasticsearch templates: OpenSearch 2.19"),
        "{err}"
    );
    assert!(err.contains(" 6 dead-lettered"), "{err}");
    let d = dead(&dead_path);
    let closed_ones = d
        .iter()
        .filter(|d| {
            d["reason"]
                .as_str()
                .unwrap()
                .contains("index_closed_exception")
        })
        .count();
    let long_ones = d
        .iter()
        .filter(|d| {
            d["reason"]
                .as_str()
                .unwrap()
                .contains("illegal_argument_exception")
        })
        .count();
    assert_eq!((closed_ones, long_ones), (5, 1), "{d:?}");
    assert_eq!(
        counts(&url, "it-fail-deviceevents")
            .await
            .values()
            .sum::<u64>(),
        9
    );
}

#[tokio::test]
async fn throttled_writes_are_retried_and_an_event_over_the_request_limit_is_dead_lettered() {
    let url = tight_node();
    fresh(&url, "it-429-*").await;
    fresh(&url, "it-413-*").await;
    // Many small requests at once against a write pool of one thread and a queue of one:
    // the node answers 429 (es_rejected_execution_exception) item by item.
    let blob = Blob::new(3000, 50);
    let mut c = sink_config(&url, "it-429-{table}");
    c.http.max_events = 10;
    c.http.concurrency = 12;
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(c).unwrap());
    let r = blob.drain(sink.clone(), 1000).await.unwrap();
    assert_eq!((r.outcome, r.stats.dead_lettered), (Outcome::Drained, 0));
    let st = sink.stats();
    eprintln!("tight node: {st}");
    assert!(
        st.retries.keys().any(|k| k.contains("429")),
        "no 429 retried: {st}"
    );
    assert_eq!(
        found(&url, "it-429-deviceprocessevents", &blob.ids).await,
        (3000, 3000)
    );

    // http.max_content_length is 200kb there: a 300 kB event is refused alone (413) and
    // dead-lettered, and the drain goes on.
    let big = Blob::new(3, 300_000);
    let sink: Arc<dyn Sink> = Arc::new(EsSink::new(sink_config(&url, "it-413-{table}")).unwrap());
    let r = big.drain(sink, 10).await.unwrap();
    assert_eq!((r.outcome, r.stats.dead_lettered), (Outcome::Drained, 3));
    for d in big.dead() {
        assert!(d["reason"].as_str().unwrap().contains("413"), "{d}");
    }
}
