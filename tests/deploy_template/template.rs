//! The repository's function definitions, and the template's settings, identity connections,
//! secrets, the BlobCreated queue and the custom handler on Flex Consumption.

use super::*;

// ---------------------------------------------------------------------------------------------
// The repository's function definitions
// ---------------------------------------------------------------------------------------------

/// `<Name>/function.json` beside host.json at the repo root.
pub(super) fn function_jsons() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo()).expect("read repo root") {
        let dir = entry.expect("dir entry").path();
        let fj = dir.join("function.json");
        if fj.is_file() {
            let text = std::fs::read_to_string(&fj).expect("read function.json");
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", fj.display()));
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            out.push((name, json));
        }
    }
    assert!(
        !out.is_empty(),
        "no <Name>/function.json at the repo root. The Functions handler (branch `handler`) \
         adds BlobCreated/function.json and Tail/function.json; these checks compare them with \
         the template"
    );
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `%NAME%` -> `NAME`.
pub(super) fn app_setting_ref(s: &str) -> Option<&str> {
    s.strip_prefix('%')?.strip_suffix('%')
}

pub(super) fn setting_is_set(settings: &BTreeMap<String, (V, &Value)>, name: &str) -> bool {
    settings.contains_key(name) || settings.keys().any(|k| k.starts_with(&format!("{name}__")))
}

pub(super) const SUBJECT_PREFIX: &str = "/blobServices/default/containers/";

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn every_bicep_file_parses_and_every_module_exists() {
    let t = template();
    assert!(
        t.files.contains_key("main.bicep"),
        "infra/main.bicep missing"
    );
    // frames() resolves each module path and panics on one that was not parsed.
    let used: Vec<String> = t.frames().iter().map(|f| f.file.clone()).collect();
    for name in t.files.keys() {
        assert!(
            used.contains(name),
            "infra/{name} is parsed but main.bicep does not use it"
        );
    }
    assert!(used.len() >= 2, "main.bicep uses no modules");
}

#[test]
fn template_sets_every_setting_the_binary_requires() {
    let t = template();
    let settings = t.app_settings();
    let required: Vec<&Setting> = SETTINGS.iter().filter(|s| s.required_in_azure).collect();
    assert!(!required.is_empty());
    for s in required {
        assert!(
            setting_is_set(&settings, s.name),
            "the binary requires {} in Azure but the template does not set it",
            s.name
        );
    }
    // The brief of the template: every RELAY_* setting is an app setting (so it can be changed
    // in the portal without a redeploy).
    for s in SETTINGS.iter().filter(|s| s.name.starts_with("RELAY_")) {
        assert!(settings.contains_key(s.name), "{} is not set", s.name);
    }
    // And nothing unknown: a typo would be set and never read.
    const PLATFORM: &[&str] = &[
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    ];
    for name in settings.keys() {
        let base = name.split("__").next().unwrap();
        assert!(
            SETTINGS.iter().any(|s| s.name == base) || PLATFORM.contains(&name.as_str()),
            "app setting {name} is not a setting the binary reads (src/config/mod.rs)"
        );
    }
    // Set by the host, never by the app.
    assert!(!settings.contains_key("FUNCTIONS_CUSTOMHANDLER_PORT"));
}

#[test]
fn connections_use_the_managed_identity() {
    let t = template();
    let settings = t.app_settings();
    for conn in ["AzureWebJobsStorage", "MdeExportStorage"] {
        assert!(
            !settings.contains_key(conn),
            "{conn} is a connection string (a shared-key secret); use {conn}__* identity settings"
        );
        let cred = settings
            .get(&format!("{conn}__credential"))
            .and_then(|(v, _)| t.lit(v));
        assert_eq!(
            cred.as_deref(),
            Some("managedidentity"),
            "{conn}__credential"
        );
        let client = &settings
            .get(&format!("{conn}__clientId"))
            .unwrap_or_else(|| panic!("{conn}__clientId missing (user-assigned identity)"))
            .0;
        let (frame, sym, path) = t.target(client).expect("clientId names the identity");
        assert_eq!(
            t.resource_type(frame, sym),
            "Microsoft.ManagedIdentity/userAssignedIdentities"
        );
        assert_eq!(path, ["properties", "clientId"]);
    }
    // Host storage by account name, the export by blob endpoint without a trailing slash.
    let (host, _) = &settings["AzureWebJobsStorage__accountName"];
    let (frame, sym, path) = t.target(host).expect("account name of a resource");
    assert_eq!(
        t.resource_type(frame, sym),
        "Microsoft.Storage/storageAccounts"
    );
    assert_eq!(path, ["name"]);
    let storage = t.eval(frame, Template::body(t.decl(frame, sym)));
    let shared_key = t.access(
        storage,
        &["properties".into(), "allowSharedKeyAccess".into()],
    );
    assert!(
        matches!(shared_key, V::Bool(false)),
        "the relay account must refuse shared keys: allowSharedKeyAccess is {shared_key:?}"
    );
    let (export, _) = &settings["MdeExportStorage__blobServiceUri"];
    let parts = match export {
        V::Interp(p) => p,
        other => panic!("MdeExportStorage__blobServiceUri: unexpected {other:?}"),
    };
    assert!(matches!(&parts[0], V::Str(s) if s == "https://"));
    assert!(
        mentions_param(&parts[1], "main.bicep", "exportStorageAccountId"),
        "the export endpoint is built from exportStorageAccountId"
    );
    assert!(
        !matches!(parts.last(), Some(V::Str(s)) if s.ends_with('/')),
        "the export endpoint must not end in `/`"
    );
}

#[test]
fn relay_setting_values_default_to_the_binarys_defaults() {
    let t = template();
    let settings = t.app_settings();
    // Every RELAY_* setting, and any other setting of the table the template sets (RUST_LOG).
    for s in SETTINGS
        .iter()
        .filter(|s| s.name.starts_with("RELAY_") || settings.contains_key(s.name))
    {
        let Some((value, _)) = settings.get(s.name) else {
            panic!("{} is not set", s.name)
        };
        match (t.lit(value), s.default) {
            (Some(v), Some(d)) => {
                assert_eq!(v, d, "{}: template default differs from the binary", s.name)
            }
            // No default in the binary: the template leaves it empty (= unset) by default.
            (Some(v), None) => assert_eq!(v, "", "{}: the binary has no default", s.name),
            // RELAY_SINK is the `sink` parameter after its deploy-time checks (see
            // sink_settings_that_cannot_work_fail_the_deployment).
            (None, _) if s.name == "RELAY_SINK" => {}
            (None, _) => assert!(
                matches!(value, V::Param(..)) || computed_by_the_template(&t, s.name, value),
                "{}: value is neither known nor a parameter: {value:?}",
                s.name
            ),
        }
    }
    // The one setting the deployer must choose.
    assert!(mentions_param(
        &settings["RELAY_SINK"].0,
        "main.bicep",
        "sink"
    ));
}

#[test]
fn secrets_are_secure_parameters_and_stay_out_of_outputs() {
    let t = template();
    let settings = t.app_settings();
    let main = t.file("main.bicep");
    for s in SETTINGS
        .iter()
        .filter(|s| s.secret && s.name.starts_with("RELAY_"))
    {
        let Some((_, raw)) = settings.get(s.name) else {
            panic!("{} is not set", s.name)
        };
        let name = raw["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{} must be set straight from a parameter", s.name));
        assert!(
            t.is_secure_param("main.bicep", name),
            "{} comes from parameter {name}, which is not @secure()",
            s.name
        );
        let default = &main["parameters"][name]["default"];
        assert!(
            default.is_null() || default == "",
            "secure parameter {name} has a default value in the template"
        );
    }
    // No output of any file names a secure parameter, or the app's settings.
    for (file, parse) in t.files {
        let secure: Vec<&String> = parse["parameters"]
            .as_object()
            .map(|p| p.keys().filter(|k| t.is_secure_param(file, k)).collect())
            .unwrap_or_default();
        for (out, decl) in parse["outputs"].as_object().into_iter().flatten() {
            let mut names = Vec::new();
            refs(&decl["value"], &mut names);
            for n in &names {
                assert!(
                    !secure.contains(&n),
                    "{file}: output {out} exposes secure parameter {n}"
                );
                assert!(
                    !["siteConfig", "appSettings", "listKeys"].contains(&n.as_str()),
                    "{file}: output {out} exposes {n}"
                );
            }
            assert!(
                !decl["decorators"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["type"] == "secure"),
                "{file}: output {out} is secure; outputs carry nothing secret here"
            );
        }
    }
}

#[test]
fn the_blob_created_queue_is_the_event_grid_destination() {
    let t = template();
    let settings = t.app_settings();
    let functions = function_jsons();
    let (_, blob_created) = functions
        .iter()
        .find(|(n, _)| n == "BlobCreated")
        .expect("BlobCreated/function.json");
    let trigger = blob_created["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .find(|b| b["type"] == "queueTrigger")
        .expect("BlobCreated has a queueTrigger binding");
    let setting = app_setting_ref(trigger["queueName"].as_str().expect("queueName"))
        .expect("the queue name comes from an app setting (%NAME%)");
    assert!(
        SETTINGS.iter().any(|s| s.name == setting),
        "{setting} is not in the settings table"
    );
    let queue = t
        .lit(&settings[setting].0)
        .unwrap_or_else(|| panic!("{setting} has no value known before deployment"));
    assert_eq!(queue, "mde-blob-created", "the documented default queue");

    // The queue resource and its account (created here; modules may reference it `existing`).
    let queues: Vec<_> = t
        .resources_of_type("Microsoft.Storage/storageAccounts/queueServices/queues")
        .into_iter()
        .filter(|(_, _, d)| d["existing"] != Value::Bool(true))
        .filter(|(f, s, _)| {
            t.lit(&V::Sym {
                frame: f.clone(),
                sym: s.clone(),
                path: vec!["name".into()],
            })
            .as_deref()
                == Some(queue.as_str())
        })
        .collect();
    assert_eq!(queues.len(), 1, "one queue named {queue} is created");
    let (qframe, qsym, _) = &queues[0];
    let account = t.account_of(qframe, qsym).expect("queue's account");

    // The trigger's connection is that account.
    let conn = trigger["connection"]
        .as_str()
        .unwrap_or("AzureWebJobsStorage");
    let (acct, _) = settings
        .get(&format!("{conn}__accountName"))
        .unwrap_or_else(|| panic!("{conn}__accountName not set"));
    let (_, acct_sym, _) = t.target(acct).expect("account symbol");
    assert_eq!(
        acct_sym, account,
        "the trigger's connection {conn} is the queue's account"
    );

    // The Event Grid subscription delivers there.
    let subs = t.resources_of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions");
    assert_eq!(subs.len(), 1, "one Event Grid subscription");
    let (sframe, _, sdecl) = &subs[0];
    let props = t.eval(sframe, &Template::body(sdecl)["properties"]);
    let get = |v: &V, path: &[&str]| -> V {
        t.access(
            v.clone(),
            &path.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    let dest = match get(&props, &["deliveryWithResourceIdentity", "destination"]) {
        V::Obj(d) => V::Obj(d),
        _ => get(&props, &["destination"]),
    };
    assert_eq!(
        t.lit(&get(&dest, &["endpointType"])).as_deref(),
        Some("StorageQueue")
    );
    assert_eq!(
        t.lit(&get(&dest, &["properties", "queueName"])).as_deref(),
        Some(queue.as_str()),
        "Event Grid delivers into another queue than BlobCreated listens on"
    );
    let target = get(&dest, &["properties", "resourceId"]);
    let (_, tsym, tpath) = t
        .target(&target)
        .expect("destination account is a resource id");
    assert_eq!((tsym, tpath), (account.as_str(), &["id".to_string()][..]));

    // Only BlobCreated, only the export containers.
    let filter = get(&props, &["filter"]);
    match get(&filter, &["includedEventTypes"]) {
        V::Arr(a) => {
            let types: Vec<_> = a.iter().filter_map(|v| t.lit(v)).collect();
            assert_eq!(types, ["Microsoft.Storage.BlobCreated"]);
        }
        other => panic!("includedEventTypes: {other:?}"),
    }
    let prefix = t
        .lit(&settings["RELAY_CONTAINER_PREFIX"].0)
        .expect("container prefix");
    assert_eq!(
        t.lit(&get(&filter, &["subjectBeginsWith"])).as_deref(),
        Some(format!("{SUBJECT_PREFIX}{prefix}").as_str())
    );
    assert_eq!(
        format!("{SUBJECT_PREFIX}{prefix}"),
        "/blobServices/default/containers/insights-logs-advancedhunting-"
    );

    // Retries, then a dead-letter container in the relay account.
    match get(&props, &["retryPolicy", "maxDeliveryAttempts"]) {
        V::Num(n) => assert!(n > 1, "maxDeliveryAttempts {n}"),
        other => panic!("retryPolicy.maxDeliveryAttempts: {other:?}"),
    }
    let dl = get(
        &props,
        &["deadLetterWithResourceIdentity", "deadLetterDestination"],
    );
    assert_eq!(
        t.lit(&get(&dl, &["endpointType"])).as_deref(),
        Some("StorageBlob")
    );
    let dl_container = t
        .lit(&get(&dl, &["properties", "blobContainerName"]))
        .expect("dead-letter container name");
    let containers =
        t.resources_of_type("Microsoft.Storage/storageAccounts/blobServices/containers");
    assert!(
        containers.iter().any(|(f, s, _)| {
            t.lit(&V::Sym {
                frame: f.clone(),
                sym: s.clone(),
                path: vec!["name".into()],
            })
            .as_deref()
                == Some(dl_container.as_str())
                && t.account_of(f, s).as_deref() == Some(account.as_str())
        }),
        "dead-letter container {dl_container} is created in the relay account"
    );
}

#[test]
fn every_app_setting_a_function_names_is_set() {
    let t = template();
    let settings = t.app_settings();
    for (name, fj) in function_jsons() {
        for b in fj["bindings"].as_array().into_iter().flatten() {
            for (key, v) in b.as_object().into_iter().flatten() {
                let Some(s) = v.as_str() else { continue };
                if let Some(setting) = app_setting_ref(s) {
                    assert!(
                        settings.contains_key(setting),
                        "{name}/function.json {key} reads %{setting}%, which the template does not set"
                    );
                }
                if key == "connection" {
                    assert!(
                        setting_is_set(&settings, s),
                        "{name}/function.json uses connection {s}, which the template does not set"
                    );
                }
            }
        }
    }
}

#[test]
fn the_app_is_a_custom_handler_on_flex_consumption() {
    let t = template();
    let settings = t.app_settings();
    assert!(
        !settings.contains_key("FUNCTIONS_WORKER_RUNTIME"),
        "Flex Consumption takes the runtime from functionAppConfig, not FUNCTIONS_WORKER_RUNTIME"
    );
    assert!(!settings.contains_key("FUNCTIONS_EXTENSION_VERSION"));
    let sites = t.resources_of_type("Microsoft.Web/sites");
    let (frame, _, decl) = &sites[0];
    let site = t.eval(frame, Template::body(decl));
    let get = |path: &[&str]| {
        t.access(
            site.clone(),
            &path.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    let kind = t.lit(&get(&["kind"])).unwrap_or_default();
    assert!(
        kind.contains("functionapp") && kind.contains("linux"),
        "kind {kind}"
    );
    let runtime = get(&["properties", "functionAppConfig", "runtime"]);
    assert_eq!(
        t.lit(&t.access(runtime.clone(), &["name".into()]))
            .as_deref(),
        Some("custom")
    );
    assert_eq!(
        t.lit(&t.access(runtime, &["version".into()])).as_deref(),
        Some("1.0")
    );

    // The plan is Flex Consumption.
    let farm = get(&["properties", "serverFarmId"]);
    let (pframe, psym, ppath) = t.target(&farm).expect("serverFarmId is a plan's id");
    assert_eq!(ppath, ["id"]);
    let plan = Template::body(t.decl(pframe, psym));
    assert_eq!(plan["sku"]["name"], "FC1");
    assert_eq!(plan["sku"]["tier"], "FlexConsumption");
    assert_eq!(
        plan["properties"]["reserved"],
        Value::Bool(true),
        "Linux plan"
    );

    // The deployment package container is in the relay account, read with the identity.
    let dep = get(&["properties", "functionAppConfig", "deployment", "storage"]);
    assert_eq!(
        t.lit(&t.access(dep.clone(), &["type".into()])).as_deref(),
        Some("blobContainer")
    );
    let auth = t.access(dep, &["authentication".into()]);
    assert_eq!(
        t.lit(&t.access(auth, &["type".into()])).as_deref(),
        Some("UserAssignedIdentity")
    );
}
