//! Production hardening (issue 9): deploy-time checks, names, roles, host.json sampling and
//! batch sizes.

use super::*;

// ---------------------------------------------------------------------------------------------
// Production hardening (issue 9): names, roles, sampling, deploy-time checks, the guide
// ---------------------------------------------------------------------------------------------

/// A value computed for given parameter values: what Resource Manager would get, or the message
/// of the `fail()` it would reach.
#[derive(Debug, PartialEq)]
pub(super) enum Concrete {
    Str(String),
    Bool(bool),
    /// What `reference()` returns (the test gives it, see [`REFERENCED`]), or part of it.
    Json(Value),
}

thread_local! {
    /// The resource `reference(..., 'Full')` returns in [`concrete`]: set by a test to the
    /// existing resource it simulates.
    static REFERENCED: std::cell::RefCell<Option<Value>> = const { std::cell::RefCell::new(None) };
}

/// A `fail()` message, with the parts not known before deployment shown as `<…>`.
pub(super) fn message(v: &V) -> String {
    match v {
        V::Str(s) => s.clone(),
        V::Interp(parts) => parts.iter().map(message).collect(),
        _ => "<…>".into(),
    }
}

/// Evaluates the few operators a deploy-time check uses (`==`, `&&`, `||`, `!`, `?:`, `empty`,
/// `fail`, `startsWith`, `contains`, `reference` and property access on what it returns);
/// anything else is a test failure, so a check the evaluator cannot follow is noticed. Reading a
/// property that does not exist is the error Resource Manager would give (`Err`).
pub(super) fn concrete(v: &V) -> Result<Concrete, String> {
    let b = |v: &V| -> Result<bool, String> {
        match concrete(v)? {
            Concrete::Bool(b) => Ok(b),
            other => panic!("expected a boolean, got {other:?}"),
        }
    };
    match v {
        V::Str(s) => Ok(Concrete::Str(s.clone())),
        V::Bool(x) => Ok(Concrete::Bool(*x)),
        V::Op(op, a) => match op.as_str() {
            "equals" => Ok(Concrete::Bool(
                concrete(&a["operand_1"])? == concrete(&a["operand_2"])?,
            )),
            "and" => Ok(Concrete::Bool(b(&a["operand_1"])? && b(&a["operand_2"])?)),
            "or" => Ok(Concrete::Bool(b(&a["operand_1"])? || b(&a["operand_2"])?)),
            "not" => Ok(Concrete::Bool(!b(&a["bool_value"])?)),
            "conditional" => {
                if b(&a["condition"])? {
                    concrete(&a["true_value"])
                } else {
                    concrete(&a["false_value"])
                }
            }
            "access" if a.contains_key("path") => {
                let Concrete::Json(mut cur) = concrete(&a["value"])? else {
                    panic!("property access on a value that is not an object: {v:?}")
                };
                let V::Arr(path) = &a["path"] else {
                    unreachable!()
                };
                for p in path {
                    let V::Str(p) = p else { unreachable!() };
                    cur = match cur.get(p) {
                        Some(next) => next.clone(),
                        None => {
                            return Err(format!(
                                "Resource Manager: The language expression property '{p}' doesn't exist"
                            ))
                        }
                    };
                }
                Ok(match cur {
                    Value::String(s) => Concrete::Str(s),
                    Value::Bool(b) => Concrete::Bool(b),
                    other => Concrete::Json(other),
                })
            }
            other => panic!("operator {other} not evaluated here: {v:?}"),
        },
        V::Obj(m) if m.is_empty() => Ok(Concrete::Json(Value::Object(Default::default()))),
        V::Call(f, a) => match f.as_str() {
            "empty" => match concrete(&a["item_to_test"])? {
                Concrete::Str(s) => Ok(Concrete::Bool(s.is_empty())),
                other => panic!("empty({other:?})"),
            },
            "fail" => match a.values().next() {
                Some(m @ (V::Str(_) | V::Interp(_))) => Err(message(m)),
                other => panic!("fail() without a message: {other:?}"),
            },
            "starts_with" => match (
                concrete(&a["string_to_search"])?,
                concrete(&a["string_to_find"])?,
            ) {
                (Concrete::Str(s), Concrete::Str(p)) => Ok(Concrete::Bool(s.starts_with(&p))),
                other => panic!("startsWith({other:?})"),
            },
            "contains" => match (concrete(&a["container"])?, concrete(&a["item_to_find"])?) {
                (Concrete::Json(Value::Object(o)), Concrete::Str(k)) => {
                    Ok(Concrete::Bool(o.contains_key(&k)))
                }
                (Concrete::Str(s), Concrete::Str(k)) => Ok(Concrete::Bool(s.contains(&k))),
                other => panic!("contains({other:?})"),
            },
            "reference" => Ok(Concrete::Json(REFERENCED.with(|r| {
                r.borrow()
                    .clone()
                    .expect("the test gives no resource for reference()")
            }))),
            other => panic!("function {other} not evaluated here: {v:?}"),
        },
        other => panic!("not computable before deployment: {other:?}"),
    }
}

#[test]
fn sink_settings_that_cannot_work_fail_the_deployment() {
    let t = template();
    let rule =
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Insights/dataCollectionRules/r";
    let ws =
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w";
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Result<&'a str, &'a str>);
    let cases: &[Case] = &[
        ("webhook", &[], Err("webhookUrl")),
        (
            "webhook",
            &[("webhookUrl", "https://siem.example/ingest")],
            Ok("webhook"),
        ),
        ("queue", &[], Err("queueSinkName")),
        ("queue", &[("queueSinkName", "relay-events")], Ok("queue")),
        ("elasticsearch", &[], Err("esUrl")),
        (
            "elasticsearch",
            &[("esUrl", "https://es.example:9200")],
            Ok("elasticsearch"),
        ),
        ("logs-ingestion", &[], Err("logsWorkspaceId")),
        (
            "logs-ingestion",
            &[("logsWorkspaceId", ws)],
            Ok("logs-ingestion"),
        ),
        (
            "logs-ingestion",
            &[("createLogsRule", "false"), ("logsRuleId", rule)],
            Err("logsEndpoint"),
        ),
        (
            "logs-ingestion",
            &[
                ("createLogsRule", "false"),
                ("logsRuleId", rule),
                ("logsEndpoint", "https://dce.example"),
                ("logsRuleImmutableId", "dcr-0123"),
            ],
            Ok("logs-ingestion"),
        ),
        ("stdout", &[], Ok("stdout")),
        // Issue 16, point 4: the package mount is read-only on Flex; only /tmp is writable.
        ("file", &[], Err("filePath")),
        ("file", &[("filePath", "events.ndjson")], Err("filePath")),
        (
            "file",
            &[("filePath", "/home/site/wwwroot/events.ndjson")],
            Err("filePath"),
        ),
        (
            "file",
            &[("filePath", "/tmp/mde-relay-events.ndjson")],
            Ok("file"),
        ),
    ];
    for (sink, params, want) in cases {
        let mut given = BTreeMap::from([("sink".to_string(), V::Str(sink.to_string()))]);
        for name in [
            "webhookUrl",
            "queueSinkName",
            "esUrl",
            "logsWorkspaceId",
            "logsRuleId",
            "logsEndpoint",
            "logsRuleImmutableId",
            "filePath",
        ] {
            given.insert(name.to_string(), V::Str(String::new()));
        }
        given.insert("createLogsRule".to_string(), V::Bool(true));
        for (k, v) in params.iter() {
            let v = match *v {
                "true" => V::Bool(true),
                "false" => V::Bool(false),
                v => V::Str(v.to_string()),
            };
            given.insert(k.to_string(), v);
        }
        *t.given.borrow_mut() = given;
        let settings = t.app_settings();
        let got = concrete(&settings["RELAY_SINK"].0);
        let case = format!("sink={sink} {params:?}");
        match (want, got) {
            (Ok(w), Ok(Concrete::Str(g))) => assert_eq!(&g, w, "{case}"),
            (Err(param), Err(msg)) => {
                assert!(
                    msg.contains(param) && msg.contains(sink),
                    "{case}: the failure message names the sink and the parameter: {msg}"
                );
            }
            (w, g) => panic!("{case}: expected {w:?}, the template gives {g:?}"),
        }
    }
}

/// Issue 16, point 3: a reused system topic must have a system-assigned identity (it delivers
/// the events). Without one, reading `identity.principalId` would fail the deployment with an
/// opaque "property doesn't exist"; the template stops with a message saying what to do.
#[test]
fn a_reused_topic_without_an_identity_fails_with_what_to_do() {
    let t = template();
    let topic = "/subscriptions/s/resourceGroups/g/providers/Microsoft.EventGrid/systemTopics/mdeexport-topic";
    *t.given.borrow_mut() = BTreeMap::from([
        ("sink".to_string(), V::Str("stdout".into())),
        ("existingSystemTopicId".to_string(), V::Str(topic.into())),
    ]);
    let root = Template::root();
    let principal = || {
        let module = t.ident(&root, "systemTopic");
        concrete(&t.access(module, &["outputs".into(), "principalId".into()]))
    };
    let cases = [
        (
            serde_json::json!({"identity": {"type": "SystemAssigned", "principalId": "11111111-2222-3333-4444-555555555555", "tenantId": "t"}, "properties": {}}),
            Ok(Concrete::Str("11111111-2222-3333-4444-555555555555".into())),
        ),
        (serde_json::json!({"properties": {}}), Err(())),
        (
            serde_json::json!({"identity": {"type": "None"}, "properties": {}}),
            Err(()),
        ),
        (
            serde_json::json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {}}, "properties": {}}),
            Err(()),
        ),
    ];
    for (existing, want) in cases {
        REFERENCED.with(|r| *r.borrow_mut() = Some(existing.clone()));
        let got = principal();
        match (want, got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "{existing}"),
            (Err(()), Err(msg)) => {
                for needle in [
                    "existingSystemTopicId",
                    "has no system-assigned identity",
                    "az eventgrid system-topic update",
                    "--identity systemassigned",
                ] {
                    assert!(
                        msg.contains(needle),
                        "{existing}: the message lacks {needle}: {msg}"
                    );
                }
            }
            (w, g) => panic!("reused topic {existing}: expected {w:?}, the template gives {g:?}"),
        }
    }
    REFERENCED.with(|r| *r.borrow_mut() = None);
}

#[test]
fn role_assignment_names_derive_from_scope_principal_and_role() {
    let t = template();
    let assignments = t.resources_of_type("Microsoft.Authorization/roleAssignments");
    assert!(assignments.len() >= 7, "{}", assignments.len());
    for (frame, sym, decl) in assignments {
        let body = Template::body(decl);
        let at = format!("{}:{sym}", frame.file);
        let (f, args) = match t.eval(&frame, &body["name"]) {
            V::Call(f, args) => (f, args),
            other => panic!("{at}: name is not guid(...): {other:?}"),
        };
        assert_eq!(f, "guid", "{at}");
        let parts: Vec<String> = args.values().map(|v| format!("{v:?}")).collect();
        let scope = t.eval(&frame, &body["scope"]);
        let scope_id = t.access(scope, &["id".into()]);
        let props = t.eval(&frame, &body["properties"]);
        let principal = t.access(props.clone(), &["principalId".into()]);
        let role = match t.access(props, &["roleDefinitionId".into()]) {
            V::Call(_, a) => a["resource_name_1"].clone(),
            other => panic!("{at}: roleDefinitionId {other:?}"),
        };
        for (what, v) in [
            ("the scope's id", scope_id),
            ("the principal id", principal),
            ("the role id", role),
        ] {
            assert!(
                parts.contains(&format!("{v:?}")),
                "{at}: the assignment name must be derived from {what} ({v:?}); it is guid({parts:?})"
            );
        }
    }
}

#[test]
fn resource_names_use_the_lower_cased_prefix() {
    let t = template();
    let main = t.file("main.bicep");
    // Every use of namePrefix outside its own declaration goes through toLower().
    fn walk(j: &Value, lowered: bool, at: &str, hits: &mut Vec<String>) {
        match j {
            Value::Object(o) => {
                if o.get("$ref").and_then(Value::as_str) == Some("namePrefix") && !lowered {
                    hits.push(at.to_string());
                }
                let lower = lowered || o.get("type").and_then(Value::as_str) == Some("to_lower");
                for (k, v) in o {
                    walk(v, lower, &format!("{at}.{k}"), hits);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, lowered, at, hits)),
            Value::String(s) if s.contains("${namePrefix") => hits.push(format!("{at}: {s}")),
            _ => {}
        }
    }
    let mut hits = Vec::new();
    for (section, items) in main.as_object().unwrap() {
        for (name, decl) in items.as_object().into_iter().flatten() {
            let mut d = decl.clone();
            if section == "parameters" && name == "namePrefix" {
                continue;
            }
            if let Some(o) = d.as_object_mut() {
                o.remove("decorators");
            }
            walk(&d, false, &format!("{section}.{name}"), &mut hits);
        }
    }
    assert!(
        hits.is_empty(),
        "namePrefix used without toLower(): {hits:#?}"
    );
    // The storage account name (lower case only) is built from the lowered prefix.
    let root = Template::root();
    let account = t.eval(&root, &main["variables"]["storageAccountName"]["value"]);
    assert!(
        format!("{account:?}").contains("to_lower"),
        "storage account name: {account:?}"
    );
}

#[test]
fn host_json_sampling_keeps_the_relays_log_lines() {
    let text = std::fs::read_to_string(repo().join("host.json")).expect("host.json");
    let host: Value = serde_json::from_str(&text).expect("host.json is JSON");
    let sampling = &host["logging"]["applicationInsights"]["samplingSettings"];
    if sampling["isEnabled"] == Value::Bool(false) {
        return;
    }
    // Sampling is on by default: the guide's queries and alerts read traces (the relay's
    // stdout/stderr lines) and exceptions, so those types must be excluded from it.
    let excluded: Vec<&str> = sampling["excludedTypes"]
        .as_str()
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .collect();
    for ty in ["Trace", "Exception"] {
        assert!(
            excluded.contains(&ty),
            "host.json logging.applicationInsights.samplingSettings must exclude {ty} \
             (or set isEnabled false): {sampling}"
        );
    }
}

/// Issue 16, point 6: an instance must not pull more BlobCreated messages than it can drain.
/// The queue trigger runs up to `batchSize + newBatchThreshold` invocations at once per
/// instance (the host fetches a new batch when the ones in flight fall to the threshold); every
/// one of them, and Tail, shares the instance's `RELAY_DRAIN_CONCURRENCY` slots. A message
/// beyond the slots waits for one, holding its visibility timeout, and is left to Tail when
/// none comes free. Both queue values must be set: the host's default threshold depends on the
/// plan's cores.
#[test]
fn host_json_pulls_no_more_messages_per_instance_than_it_has_drain_slots() {
    let text = std::fs::read_to_string(repo().join("host.json")).expect("host.json");
    let host: Value = serde_json::from_str(&text).expect("host.json is JSON");
    let queues = &host["extensions"]["queues"];
    let number = |k: &str| {
        queues[k].as_u64().unwrap_or_else(|| {
            panic!("host.json extensions.queues.{k} must be set (the default depends on the plan)")
        })
    };
    let pulled = number("batchSize") + number("newBatchThreshold");
    let binary: u64 = mde_relay::config::setting("RELAY_DRAIN_CONCURRENCY")
        .and_then(|s| s.default)
        .expect("RELAY_DRAIN_CONCURRENCY has a default")
        .parse()
        .expect("numeric default");
    let t = template();
    let settings = t.app_settings();
    let deployed: u64 = t
        .lit(&settings["RELAY_DRAIN_CONCURRENCY"].0)
        .expect("the template sets RELAY_DRAIN_CONCURRENCY from a literal default")
        .parse()
        .expect("numeric drainConcurrency");
    for (who, slots) in [("the binary's default", binary), ("the template", deployed)] {
        assert!(
            pulled <= slots,
            "host.json lets an instance pull batchSize + newBatchThreshold = {pulled} messages, \
             but {who} gives it RELAY_DRAIN_CONCURRENCY = {slots} drain slots"
        );
    }
    // Not starved either: at least one message per slot is fetched when all are free.
    assert!(number("batchSize") >= 1);
}
