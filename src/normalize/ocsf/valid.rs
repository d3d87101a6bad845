//! OCSF constraints, enforced on every event before it is written: an object that lacks an
//! attribute its type requires, or all of its `at_least_one` attributes, is taken out of the
//! event and its columns go back to `unmapped`; then the class's own required attributes and
//! constraints decide whether the event keeps its class (else it falls back to Base Event).
//!
//! The rules are those of the OCSF 1.5.0 schema as compiled by `ocsf-schema-compiler` (with
//! the inheritance from `_entity` resolved), for the objects this mapping writes, keyed by the
//! attribute name they appear under: every name below has one object type wherever it occurs
//! in the classes used here.

use super::builder::Event;
use super::value::{Obj, Value};
use std::borrow::Cow;
use std::fmt::Write;

/// What an object type needs: every `required` attribute and at least one of `one_of`.
struct Rule {
    required: &'static [&'static str],
    one_of: &'static [&'static str],
}

const NAME_UID: &[&str] = &["name", "uid"];
const NETWORK_ENDPOINT: &[&str] = &[
    "ip",
    "uid",
    "name",
    "hostname",
    "svc_name",
    "instance_uid",
    "interface_uid",
    "interface_name",
    "domain",
];
const DEVICE: &[&str] = &[
    "ip",
    "uid",
    "name",
    "hostname",
    "instance_uid",
    "interface_uid",
    "interface_name",
];
const EVIDENCES: &[&str] = &[
    "actor",
    "api",
    "connection_info",
    "data",
    "database",
    "databucket",
    "device",
    "dst_endpoint",
    "email",
    "file",
    "process",
    "query",
    "src_endpoint",
    "url",
    "user",
    "job",
    "script",
];

const fn rule(required: &'static [&'static str], one_of: &'static [&'static str]) -> Rule {
    Rule { required, one_of }
}

/// The rule of the object type an attribute of this name holds.
fn rule_of(key: &str) -> Option<Rule> {
    Some(match key {
        "process" | "parent_process" => rule(&[], &["pid", "uid", "cpid"]),
        "product" | "groups" | "technique" | "tactic" | "sub_technique" | "account" | "org"
        | "service" | "web_resources" | "resources" | "policy" | "analytic" | "idp" | "rule"
        | "malware_scan_info" => rule(&[], NAME_UID),
        "malware" => rule(&["classification_ids"], NAME_UID),
        "src_endpoint" | "dst_endpoint" => rule(&[], NETWORK_ENDPOINT),
        "user" | "users" => rule(&[], &["account", "name", "uid"]),
        "device" => rule(&["type_id"], DEVICE),
        "actor" => rule(
            &[],
            &[
                "process",
                "user",
                "invoked_by",
                "session",
                "app_name",
                "app_uid",
            ],
        ),
        "file" | "file_result" => rule(&["name", "type_id"], &[]),
        "url" | "urls" => rule(&[], &["url_string", "path"]),
        "evidences" => rule(&[], EVIDENCES),
        "query" => rule(&["hostname"], &[]),
        "answers" => rule(&["rdata"], &[]),
        "finding_info" => rule(&["uid"], &[]),
        "attacks" => rule(&[], &["tactic", "technique", "sub_technique"]),
        "email" => rule(&[], &["from", "to"]),
        "module" => rule(&["load_type_id"], &[]),
        "script" => rule(&["script_content", "type_id"], &[]),
        "script_content" => rule(&["value"], &[]),
        "hashes" => rule(&["algorithm_id", "value"], &[]),
        "connection_info" => rule(&["direction_id"], &[]),
        "api" => rule(&["operation"], &[]),
        "http_response" => rule(&["code"], &[]),
        "auth_factors" => rule(&["factor_type_id"], &[]),
        "reg_key" | "prev_reg_key" => rule(&["path"], &[]),
        "reg_value" | "prev_reg_value" => rule(&["name", "path"], &[]),
        "os" => rule(&["name", "type_id"], &[]),
        "location" => rule(&[], &["city", "country", "postal_code", "region"]),
        "entity" => rule(
            &[],
            &["name", "uid", "device", "group", "org", "policy", "user"],
        ),
        "network_interfaces" => rule(&["type_id"], &["ip", "mac", "name", "hostname"]),
        "cloud" => rule(&["provider"], &[]),
        _ => return None,
    })
}

fn satisfies(o: &Obj<'_>, r: &Rule) -> bool {
    let has = |k: &&str| o.get(k).is_some_and(|v| !v.is_null());
    r.required.iter().all(has) && (r.one_of.is_empty() || r.one_of.iter().any(has))
}

/// Collects the paths of objects that break their rule, deepest first. A parent is judged
/// only once its children pass (dropping a child may change it); `false` when something
/// below failed. `path` is the path of `o` (extended and restored in place: no allocation
/// unless something fails).
fn failing(o: &mut Obj<'_>, path: &mut String, out: &mut Vec<String>) -> bool {
    let mut clean = true;
    for (k, child) in o.iter_mut() {
        if k == "unmapped" {
            continue;
        }
        // What `finish_files` does, on the way.
        if k == "file" || k == "file_result" {
            if let Value::Object(file) = child {
                fix_file(file);
            }
        }
        if !(child.is_object() || child.is_array()) {
            continue;
        }
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(k);
        match child {
            Value::Object(c) => {
                if !failing(c, path, out) {
                    clean = false;
                } else if c.is_empty() || rule_of(k).is_some_and(|r| !satisfies(c, &r)) {
                    out.push(path.clone());
                    clean = false;
                }
            }
            Value::Array(items) => {
                // One broken item takes the array out: its columns go back together, and
                // indices of what stays do not shift.
                let mut bad = items.is_empty();
                let rule = rule_of(k);
                for (i, item) in items.iter_mut().enumerate() {
                    match item {
                        Value::Array(_) => finish_files(item),
                        Value::Object(c) => {
                            let l = path.len();
                            let _ = write!(path, ".{i}");
                            if !failing(c, path, out) {
                                clean = false;
                            }
                            path.truncate(l);
                            bad |= c.is_empty() || rule.as_ref().is_some_and(|r| !satisfies(c, r));
                        }
                        Value::Null => bad = true,
                        _ => {}
                    }
                }
                if bad {
                    out.push(path.clone());
                    clean = false;
                }
            }
            _ => {}
        }
        path.truncate(len);
    }
    clean
}

/// The last component of a Windows or POSIX path.
fn basename(p: &str) -> &str {
    p.rsplit(['\\', '/']).next().unwrap_or(p)
}

/// Fixes up what tables cannot: every `file` object gets `type_id` 1 (Regular File) and a
/// `name` from its path when the name column was empty (a file with neither is taken out by
/// this module).
fn finish_files<'a>(v: &mut Value<'a>) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(finish_files),
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "unmapped" {
                    continue;
                }
                if k == "file" || k == "file_result" {
                    if let Value::Object(file) = child {
                        fix_file(file);
                    }
                }
                finish_files(child);
            }
        }
        _ => {}
    }
}

/// A `file` gets `type_id` 1 (Regular File) and a `name` from its path when it has none.
fn fix_file<'a>(file: &mut Obj<'a>) {
    if !file.contains_key("name") {
        let name = match file.get("path") {
            Some(Value::String(Cow::Borrowed(p))) => {
                let p: &'a str = p;
                Some(Cow::Borrowed(basename(p)))
            }
            Some(Value::String(Cow::Owned(p))) => Some(Cow::Owned(basename(p).to_string())),
            _ => None,
        };
        if let Some(n) = name {
            if !n.is_empty() {
                file.insert("name", Value::String(n));
            }
        }
    }
    if !file.contains_key("type_id") {
        file.insert("type_id", 1.into());
    }
}

/// Takes out every object of the event that breaks its rule, repeatedly (a parent can break
/// once a child is gone), returning their columns to the row.
pub(crate) fn enforce_objects(ev: &mut Event) {
    loop {
        let mut bad = Vec::new();
        // (The walk also completes every `file`: see `finish_files`.)
        failing(&mut ev.obj, &mut String::new(), &mut bad);
        if bad.is_empty() {
            return;
        }
        // Deepest first, and a path whose ancestor also goes is handled by the ancestor.
        bad.sort_by_key(|p| std::cmp::Reverse(p.matches('.').count()));
        for p in &bad {
            ev.drop_path(p);
        }
    }
}

/// Whatever the object at `path` (and below) breaks is taken out now, so a mapping can tell
/// whether e.g. `actor.process` survives.
pub(crate) fn enforce_at(ev: &mut Event, path: &str) {
    loop {
        let mut bad = Vec::new();
        let Some(v) = ev.get_mut(path) else { return };
        let key = path.rsplit('.').next().unwrap_or(path);
        match v {
            Value::Object(o) => {
                if failing(o, &mut path.to_string(), &mut bad) {
                    let broken = o.is_empty() || rule_of(key).is_some_and(|r| !satisfies(o, &r));
                    if broken {
                        bad.push(path.to_string());
                    }
                }
            }
            Value::Null => bad.push(path.to_string()),
            other => {
                finish_files(other);
                return;
            }
        }
        if bad.is_empty() {
            return;
        }
        bad.sort_by_key(|p| std::cmp::Reverse(p.matches('.').count()));
        for p in &bad {
            ev.drop_path(p);
        }
    }
}

/// The attributes (besides those every class requires, which [`super::build`] always sets)
/// a class requires, and its own `at_least_one`.
fn class_rule(class_uid: u64) -> Rule {
    const ENDPOINTS: &[&str] = &["dst_endpoint", "src_endpoint"];
    match class_uid {
        1001 => rule(&["actor", "device", "file"], &[]),
        1005 => rule(&["actor", "device", "module"], &[]),
        1007 => rule(&["actor", "device", "process"], &[]),
        1009 => rule(&["actor", "device", "script"], &[]),
        201001 => rule(&["actor", "device", "reg_key"], &[]),
        201002 => rule(&["actor", "device", "reg_value"], &[]),
        2004 => rule(&["finding_info"], &[]),
        3001 => rule(&["user"], &[]),
        3002 => rule(&["user"], &["service", "dst_endpoint"]),
        3004 => rule(&["entity"], &[]),
        4001 | 4003 => rule(&[], ENDPOINTS),
        4009 => rule(&["direction_id", "email"], &[]),
        4011 => rule(&["email_uid", "file"], &[]),
        4012 => rule(&["email_uid", "url"], &[]),
        5001 => rule(&["device"], &[]),
        6001 => rule(&["web_resources"], &[]),
        6003 => rule(&["actor", "api", "src_endpoint"], &[]),
        _ => rule(&[], &[]),
    }
}

/// Enforces the object rules, then whether the event still meets its class's.
pub(crate) fn finish(ev: &mut Event) -> bool {
    enforce_objects(ev);
    let class = ev.obj.get("class_uid").and_then(Value::as_u64).unwrap_or(0);
    satisfies(&ev.obj, &class_rule(class))
}
