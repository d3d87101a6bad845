//! Role assignments, outputs, the parameters files and the containers the relay writes.

use super::*;

/// Built-in role definition ids, checked against Microsoft's built-in roles reference.
pub(super) const BUILT_IN_ROLES: &[(&str, &str)] = &[
    (
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "Storage Blob Data Reader",
    ),
    (
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Storage Blob Data Contributor",
    ),
    (
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "Storage Blob Data Owner",
    ),
    (
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "Storage Queue Data Contributor",
    ),
    (
        "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
        "Storage Queue Data Message Sender",
    ),
    (
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "Monitoring Metrics Publisher",
    ),
    (
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "Storage Table Data Contributor",
    ),
];

pub(super) fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Who a role assignment is for.
pub(super) fn principal_kind(t: &Template, v: &V) -> &'static str {
    let sym_kind = |v: &V| -> Option<&'static str> {
        let (frame, sym, path) = t.target(v)?;
        match (t.resource_type(frame, sym).as_str(), path) {
            ("Microsoft.ManagedIdentity/userAssignedIdentities", [a, b])
                if a == "properties" && b == "principalId" =>
            {
                Some("relay identity")
            }
            ("Microsoft.EventGrid/systemTopics", [a, b])
                if a == "identity" && b == "principalId" =>
            {
                Some("system topic identity")
            }
            _ => None,
        }
    };
    if let Some(k) = sym_kind(v) {
        return k;
    }
    // A created-or-reused topic: `reuse ? <the existing topic's identity.principalId, read from
    // reference(existing.id, ..., 'Full') or fail()> : created.identity.principalId`. Every
    // branch that yields a value must be a system topic's identity.
    fn topic_leaves(t: &Template, v: &V, sym_kind: &dyn Fn(&V) -> Option<&'static str>) -> bool {
        match v {
            V::Op(op, a) if op == "conditional" => {
                topic_leaves(t, &a["true_value"], sym_kind)
                    && topic_leaves(t, &a["false_value"], sym_kind)
            }
            V::Call(f, _) if f == "fail" => true,
            V::Op(op, a) if op == "access" && a.contains_key("path") => {
                let path_ok = matches!(&a["path"], V::Arr(p) if matches!(p.as_slice(),
                    [V::Str(x), V::Str(y)] if x == "identity" && y == "principalId"));
                let of_topic = match &a["value"] {
                    V::Call(f, r) if f == "reference" => t
                        .target(&r["resource_identifier"])
                        .is_some_and(|(frame, sym, path)| {
                            path == ["id"]
                                && t.resource_type(frame, sym) == "Microsoft.EventGrid/systemTopics"
                        }),
                    _ => false,
                };
                path_ok && of_topic
            }
            other => sym_kind(other) == Some("system topic identity"),
        }
    }
    if matches!(v, V::Op(op, _) if op == "conditional") && topic_leaves(t, v, &sym_kind) {
        return "system topic identity";
    }
    panic!("role assignment for an unexpected principal: {v:?}")
}

#[test]
fn role_assignments_are_the_intended_built_in_roles() {
    let t = template();
    let mut found: Vec<(String, String, &str)> = Vec::new();
    let relay_account = {
        let settings = t.app_settings();
        let (v, _) = &settings["AzureWebJobsStorage__accountName"];
        let (f, s, _) = t.target(v).expect("account");
        (f.file.clone(), s.to_string())
    };
    for (frame, sym, decl) in t.resources_of_type("Microsoft.Authorization/roleAssignments") {
        let body = Template::body(decl);
        let props = t.eval(&frame, &body["properties"]);
        let prop = |k: &str| t.access(props.clone(), &[k.to_string()]);

        // subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '<built-in id>')
        let role_id = match prop("roleDefinitionId") {
            V::Call(f, args) if f == "subscription_resource_id" => {
                assert!(
                    matches!(args.get("resource_type"), Some(V::Str(s)) if s == "Microsoft.Authorization/roleDefinitions"),
                    "{}:{sym}: roleDefinitionId is not a role definition id",
                    frame.file
                );
                match &args["resource_name_1"] {
                    V::Str(s) if is_guid(s) => s.clone(),
                    other => panic!("{}:{sym}: role id {other:?}", frame.file),
                }
            }
            other => panic!("{}:{sym}: roleDefinitionId {other:?}", frame.file),
        };
        let role = BUILT_IN_ROLES
            .iter()
            .find(|(id, _)| *id == role_id)
            .unwrap_or_else(|| {
                panic!(
                    "{}:{sym}: {role_id} is not one of the intended roles",
                    frame.file
                )
            })
            .1;
        assert_eq!(
            t.lit(&prop("principalType")).as_deref(),
            Some("ServicePrincipal"),
            "{}:{sym}",
            frame.file
        );
        let who = principal_kind(&t, &prop("principalId"));
        let scope = t.eval(&frame, &body["scope"]);
        let (sframe, ssym, spath) = t
            .target(&scope)
            .unwrap_or_else(|| panic!("{}:{sym}: scope is not a resource: {scope:?}", frame.file));
        assert!(spath.is_empty());
        let scope_type = t.resource_type(sframe, ssym);
        let scope_decl = t.decl(sframe, ssym);

        // Where: the export account is referenced (existing) and comes from the parameter; the
        // relay's own roles are on the relay account or its children.
        if role == "Storage Blob Data Reader" {
            assert_eq!(
                scope_decl["existing"],
                Value::Bool(true),
                "export account is existing"
            );
            let name = t.eval(sframe, &Template::body(scope_decl)["name"]);
            assert!(
                mentions_param(&name, "main.bicep", "exportStorageAccountId"),
                "Blob Data Reader is granted on the export account: {name:?}"
            );
            let (caller, module) = sframe.caller.as_ref().expect("granted from a module");
            let mdecl = &t.file(&caller.file)["modules"][module];
            let mscope = t.eval(caller, &Template::body(mdecl)["scope"]);
            assert!(
                mentions_param(&mscope, "main.bicep", "exportStorageAccountId"),
                "the reader module is deployed at the export account's resource group"
            );
        } else if scope_type.starts_with("Microsoft.Storage/") {
            assert_eq!(
                t.account_key(sframe, ssym).as_ref(),
                Some(&relay_account),
                "{}:{sym}: {role} is granted outside the relay account",
                frame.file
            );
        }
        found.push((role.to_string(), scope_type, who));
    }
    found.sort();
    let mut expected = vec![
        // Reads the export; never writes there.
        (
            "Storage Blob Data Reader",
            "Microsoft.Storage/storageAccounts",
            "relay identity",
        ),
        // Host storage (identity-based AzureWebJobsStorage), checkpoints, dead letters, package.
        (
            "Storage Blob Data Owner",
            "Microsoft.Storage/storageAccounts",
            "relay identity",
        ),
        // Queue trigger (+ poison queue) and the queue sink.
        (
            "Storage Queue Data Contributor",
            "Microsoft.Storage/storageAccounts",
            "relay identity",
        ),
        // The host's diagnostic events (tables of AzureWebJobsStorage).
        (
            "Storage Table Data Contributor",
            "Microsoft.Storage/storageAccounts",
            "relay identity",
        ),
        // Entra-authenticated telemetry.
        (
            "Monitoring Metrics Publisher",
            "Microsoft.Insights/components",
            "relay identity",
        ),
        // Event Grid adds messages to the one queue...
        (
            "Storage Queue Data Message Sender",
            "Microsoft.Storage/storageAccounts/queueServices/queues",
            "system topic identity",
        ),
        // ...and writes undeliverable events to the one dead-letter container.
        (
            "Storage Blob Data Contributor",
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "system topic identity",
        ),
        // logs-ingestion sink: uploads through the created rule, or an existing one.
        (
            "Monitoring Metrics Publisher",
            "Microsoft.Insights/dataCollectionRules",
            "relay identity",
        ),
        (
            "Monitoring Metrics Publisher",
            "Microsoft.Insights/dataCollectionRules",
            "relay identity",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
    .collect::<Vec<_>>();
    expected.sort();
    assert_eq!(found, expected);
}

#[test]
fn outputs_name_the_app_the_queue_and_the_principal() {
    let t = template();
    let root = Template::root();
    let outputs = t.file("main.bicep")["outputs"]
        .as_object()
        .expect("outputs");
    let out = |name: &str| {
        let decl = outputs
            .get(name)
            .unwrap_or_else(|| panic!("output {name} missing"));
        t.eval(&root, &decl["value"])
    };
    let check = |name: &str, ty: &str, path: &[&str]| {
        let v = out(name);
        let (f, s, p) = t
            .target(&v)
            .unwrap_or_else(|| panic!("output {name}: {v:?}"));
        assert_eq!(t.resource_type(f, s), ty, "output {name}");
        assert_eq!(p, path, "output {name}");
    };
    check("functionAppName", "Microsoft.Web/sites", &["name"]);
    check(
        "eventsQueueName",
        "Microsoft.Storage/storageAccounts/queueServices/queues",
        &["name"],
    );
    check(
        "principalId",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        &["properties", "principalId"],
    );
}

pub(super) fn parameters_file(name: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(repo().join("infra").join(name))
        .unwrap_or_else(|e| panic!("infra/{name}: {e}"));
    let file: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("infra/{name} is not JSON: {e}"));
    file["parameters"]
        .as_object()
        .unwrap_or_else(|| panic!("infra/{name} has no parameters"))
        .clone()
}

/// The value a parameters-file entry gives, as the evaluator's value.
pub(super) fn file_value(v: &Value) -> V {
    match &v["value"] {
        Value::String(s) => V::Str(s.clone()),
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Num(n.as_i64().unwrap_or_default()),
        other => panic!("parameter value {other} not handled here"),
    }
}

/// Issue 16, point 1: Resource Manager resolves every Key Vault reference of a parameters file,
/// used or not, so one reference to a vault that does not exist fails every deployment that
/// uses the file. The example file holds plain values only; the vault variant is a second file
/// the guide offers as an option, and secrets never sit in a file as values.
#[test]
fn the_example_parameters_file_fits_the_template() {
    let t = template();
    let declared = t.file("main.bicep")["parameters"]
        .as_object()
        .expect("main.bicep parameters");
    let given = parameters_file("main.parameters.json");
    for (name, v) in &given {
        assert!(
            declared.contains_key(name),
            "main.parameters.json sets unknown {name}"
        );
        assert!(
            v.get("reference").is_none(),
            "main.parameters.json: {name} is a Key Vault reference; Resource Manager resolves it \
             on every deployment with this file, so a vault that does not exist fails them all \
             (keep references in main.parameters.keyvault.json)"
        );
        assert!(
            !t.is_secure_param("main.bicep", name),
            "main.parameters.json: the secure parameter {name} must not be a value in a file \
             (give it on the command line or from main.parameters.keyvault.json)"
        );
    }
    for (name, decl) in declared {
        if decl["default"].is_null() {
            assert!(
                given.contains_key(name),
                "required parameter {name} missing from the example"
            );
        }
    }
    let vault = parameters_file("main.parameters.keyvault.json");
    for (name, v) in &vault {
        assert!(
            t.is_secure_param("main.bicep", name) && v.get("reference").is_some(),
            "main.parameters.keyvault.json: {name} must be a secure parameter given as a Key Vault reference"
        );
    }
    // The guide's deployment: the file plus the one sink secret on the command line reaches a
    // working sink; the file alone stops with a message naming that parameter, not an opaque
    // Resource Manager error.
    let sink = file_value(&given["sink"]);
    let mut values: BTreeMap<String, V> = given
        .iter()
        .map(|(k, v)| (k.clone(), file_value(v)))
        .collect();
    *t.given.borrow_mut() = values.clone();
    let alone = concrete(&t.app_settings()["RELAY_SINK"].0);
    let secret = match &sink {
        V::Str(s) if s == "webhook" => "webhookUrl",
        other => panic!("the example's sink {other:?} is not the one the guide documents"),
    };
    assert!(
        matches!(&alone, Err(m) if m.contains(secret)),
        "the example file alone: {alone:?}"
    );
    values.insert(secret.into(), V::Str("https://siem.example/ingest".into()));
    *t.given.borrow_mut() = values;
    assert_eq!(
        concrete(&t.app_settings()["RELAY_SINK"].0),
        Ok(Concrete::Str("webhook".into()))
    );
    let guide = deploy_md();
    for needle in [
        "@infra/main.parameters.json",
        "webhookUrl=",
        "@infra/main.parameters.keyvault.json",
    ] {
        assert!(
            guide.contains(needle),
            "docs/deploy.md does not show {needle}"
        );
    }
}

#[test]
fn the_containers_the_relay_writes_exist_in_its_account() {
    let t = template();
    let settings = t.app_settings();
    let (acct, _) = &settings["AzureWebJobsStorage__accountName"];
    let account = t.target(acct).expect("account symbol").1.to_string();
    let containers: Vec<String> = t
        .resources_of_type("Microsoft.Storage/storageAccounts/blobServices/containers")
        .into_iter()
        .filter(|(f, s, _)| t.account_of(f, s).as_deref() == Some(account.as_str()))
        .filter_map(|(f, s, _)| {
            t.lit(&V::Sym {
                frame: f,
                sym: s,
                path: vec!["name".into()],
            })
        })
        .collect();
    for setting in ["RELAY_STATE_CONTAINER", "RELAY_DEADLETTER_CONTAINER"] {
        let name = t.lit(&settings[setting].0).expect(setting);
        assert!(
            containers.contains(&name),
            "{setting} = {name} is not a container of the relay account ({containers:?})"
        );
    }
}
