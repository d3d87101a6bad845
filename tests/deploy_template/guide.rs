//! docs/deploy.md: the commands of the guide, its KQL and its alert rules.

use super::*;

// ---------------------------------------------------------------------------------------------
// docs/deploy.md
// ---------------------------------------------------------------------------------------------

pub(super) fn t_outputs() -> Vec<String> {
    template().file("main.bicep")["outputs"]
        .as_object()
        .expect("outputs")
        .keys()
        .cloned()
        .collect()
}

pub(super) fn deploy_md() -> String {
    std::fs::read_to_string(repo().join("docs/deploy.md")).expect("docs/deploy.md")
}

/// The shell commands of the ```sh blocks of `text`, continuation lines joined.
pub(super) fn shell_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut cur = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("```") {
            in_block = l == "```sh" || l == "```bash";
            continue;
        }
        if !in_block {
            continue;
        }
        cur.push_str(l.trim_end_matches('\\'));
        cur.push(' ');
        if !(l.ends_with('\\') || l.ends_with('|')) {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// The text of the `## title` section.
pub(super) fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {title}"))
        .unwrap_or_else(|| panic!("docs/deploy.md has no section `## {title}`"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map(|e| e + 3).unwrap_or(rest.len());
    &rest[..end]
}

/// Words that mark a command as touching the export account or what lives beside it.
pub(super) const EXPORT_MARKERS: &[&str] = &[
    "EXPORT_ID",
    "<export-",
    "export-rg",
    "system-topic",
    "TOPIC_ID",
    "<system-topic-id>",
];

#[test]
fn deploy_guide_uses_the_export_subscription_everywhere() {
    let md = deploy_md();
    let mut checked = 0;
    // Inline `az ...` commands count too.
    let inline: Vec<String> = md
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with("az "))
        .map(|c| c.replace('\n', " "))
        .collect();
    for cmd in shell_commands(&md).into_iter().chain(inline) {
        for part in cmd.split('|').map(str::trim) {
            let Some(az) = part.find("az ").map(|i| &part[i..]) else {
                continue;
            };
            if EXPORT_MARKERS.iter().any(|m| cmd.contains(m)) && !az.starts_with("az deployment") {
                checked += 1;
                assert!(
                    cmd.contains("--subscription"),
                    "a command touching the export account needs --subscription \
                     (the export account may be in another subscription): {cmd}"
                );
            }
        }
    }
    assert!(checked >= 5, "only {checked} export-account commands found");
    for cmd in shell_commands(&md) {
        if cmd.contains("az provider register") {
            assert!(
                cmd.contains("--wait"),
                "provider registration must wait: {cmd}"
            );
        }
    }
    assert!(md.contains("az provider register"));
}

#[test]
fn deploy_guide_looks_up_the_system_topic_case_insensitively() {
    let md = deploy_md();
    let lookup = shell_commands(&md)
        .into_iter()
        .find(|c| c.contains("az eventgrid system-topic list"))
        .expect("the guide looks up an existing system topic");
    assert!(lookup.contains("--subscription"), "{lookup}");
    let lower = lookup.to_lowercase();
    assert!(
        lower.contains("tolower($2) == \"microsoft.storage.storageaccounts\"")
            && lower.contains("tolower($3) == tolower(src)"),
        "filter on the topic type and the source, both case-insensitively: {lookup}"
    );
    assert!(
        lookup.contains("[].[id, topicType, source"),
        "the columns the filter reads: {lookup}"
    );
}

/// The ```kusto blocks of a Markdown page.
pub(super) fn kusto_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim_start();
        match &mut cur {
            None if l.starts_with("```kusto") => cur = Some(String::new()),
            Some(b) if l.starts_with("```") => {
                out.push(std::mem::take(b));
                cur = None;
            }
            Some(b) => {
                b.push_str(l);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Issue 16, point 9: the host logs a custom handler's stdout outside the invocation, so the
/// relay's lines in `traces` have no `operation_Id`/`operation_Name`; queries over them use the
/// relay's own `span.invocation_id` / `span.function` (tests/host_protocol.rs checks the lines
/// carry them).
#[test]
fn kql_over_the_relays_lines_uses_its_own_invocation_id() {
    for page in ["docs/deploy.md", "docs/operations.md"] {
        let text = std::fs::read_to_string(repo().join(page)).unwrap();
        let blocks = kusto_blocks(&text);
        assert!(!blocks.is_empty(), "{page}: no KQL found");
        for b in &blocks {
            // Comments aside, a query that reads `traces` only.
            let code: String = b
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            if code.trim_start().starts_with("traces") {
                assert!(
                    !code.contains("operation_"),
                    "{page}: this query reads the relay's lines by the host's operation fields, \
                     which they do not carry; use span.invocation_id / span.function:\n{b}"
                );
            }
        }
        assert!(
            blocks.iter().any(|b| b.contains("span.invocation_id")),
            "{page}: no query uses the relay's span.invocation_id"
        );
    }
    let monitoring =
        std::fs::read_to_string(repo().join("infra/modules/monitoring.bicep")).unwrap();
    assert!(
        !monitoring.contains("operation_"),
        "the alert queries read the relay's lines: no host operation fields there"
    );
}

#[test]
fn deploy_guide_teardown_stands_alone() {
    let md = deploy_md();
    let td = section(&md, "Tear down");
    let cmds = shell_commands(td);
    assert!(cmds.iter().any(|c| c.contains("az group delete")), "{td}");
    // Issue 16, point 10: a reused topic is not deleted; what Logs Ingestion created is.
    let topic_delete = cmds
        .iter()
        .position(|c| c.contains("--ids \"$TOPIC_ID\""))
        .expect("the teardown deletes a created topic");
    assert!(
        cmds[..topic_delete]
            .iter()
            .any(|c| c.contains("systemTopicCreated")),
        "the topic is deleted only when the deployment created it: {td}"
    );
    for output in [
        "logsRoleAssignmentId",
        "logsRuleId",
        "logsEndpointId",
        "logsTableId",
    ] {
        assert!(
            td.contains(&format!("out {output}")),
            "teardown misses {output}: {td}"
        );
        assert!(
            t_outputs().contains(&output.to_string()),
            "main.bicep has no output {output}"
        );
    }
    let mut defined: Vec<String> = Vec::new();
    for c in &cmds {
        // Assignments (`NAME=...`) and shell functions (`name() {`).
        let head = c.trim_start();
        if let Some((name, _)) = head.split_once('=') {
            if !name.is_empty()
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                defined.push(name.to_string());
            }
        }
        if let Some((name, _)) = head.split_once("()") {
            defined.push(name.trim().to_string());
        }
        // Loop variables (`for id in …; do`).
        if let Some(rest) = head.strip_prefix("for ") {
            if let Some((name, _)) = rest.split_once(" in ") {
                defined.push(name.trim().to_string());
            }
        }
        let mut rest = c.as_str();
        while let Some(i) = rest.find('$') {
            rest = &rest[i + 1..];
            let name: String = rest
                .trim_start_matches('{')
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            if name.is_empty() || name.chars().all(|ch| ch.is_ascii_digit()) {
                continue; // $( … ) or a function's $1
            }
            assert!(
                defined.contains(&name),
                "teardown uses ${name}, which it does not set itself (a reader may come back \
                 in a new shell): {c}"
            );
        }
    }
}

#[test]
fn deploy_guide_states_permissions_and_the_role_propagation_delay() {
    let md = deploy_md();
    // Issue 16, point 2: `fail()` needs Bicep 0.33.93, and `az bicep install` never upgrades.
    let pre = section(&md, "Prerequisites");
    for needle in ["0.33.93", "az bicep version", "az bicep upgrade"] {
        assert!(pre.contains(needle), "the prerequisites lack {needle}");
    }
    let uses_fail = ["main.bicep", "modules/eventgrid-topic.bicep"]
        .iter()
        .any(|f| {
            std::fs::read_to_string(repo().join("infra").join(f))
                .unwrap()
                .contains("fail(")
        });
    assert!(uses_fail, "no fail() left: the Bicep version note can go");
    let paragraphs: Vec<String> = md
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        paragraphs
            .iter()
            .any(|p| p.contains("export account's **resource group**")
                && p.contains("**Owner**")
                && p.contains("**Contributor + Role Based Access Control Administrator**")),
        "docs/deploy.md must state the deployer's roles on the export account's resource group"
    );
    assert!(
        paragraphs.iter().any(|p| p.contains("role assignments")
            && p.contains("minutes")
            && p.contains("-poison")
            && p.contains("Tail")),
        "docs/deploy.md must say that new role assignments take minutes, that the first \
         messages may go to the poison queue, and that Tail still drains those blobs"
    );
}

/// The alert rules (issue 12): one on lag and one on dead letters, both log-based over the
/// handler's `event=drain_summary` lines in the function app's Application Insights, with
/// thresholds and an action group taken from main.bicep parameters.
#[test]
fn alert_rules_watch_lag_and_dead_letters() {
    let t = template();
    let main = t.file("main.bicep");
    for p in [
        "alertsEnabled",
        "alertActionGroupId",
        "lagAlertThresholdSeconds",
        "deadLetterAlertThreshold",
    ] {
        assert!(
            main["parameters"].get(p).is_some(),
            "main.bicep has no parameter {p}"
        );
    }
    let rules = t.resources_of_type("Microsoft.Insights/scheduledQueryRules");
    let mut seen = BTreeMap::new();
    for (frame, sym, decl) in &rules {
        let body = Template::body(decl);
        assert!(
            decl["config"].get("condition").is_some(),
            "{sym}: the rule should depend on alertsEnabled"
        );
        let props = &body["properties"];
        // Scope: the Application Insights component the host sends the handler's logs to.
        let scopes = t.eval(frame, &props["scopes"]);
        let V::Arr(scopes) = scopes else {
            panic!("{sym}: scopes is not a list: {scopes:?}")
        };
        assert_eq!(scopes.len(), 1, "{sym}");
        let (f, s, path) = t.target(&scopes[0]).expect("scope is a resource");
        assert_eq!(
            t.resource_type(f, s),
            "Microsoft.Insights/components",
            "{sym}"
        );
        assert_eq!(path, ["id"], "{sym}");

        let crit = &props["criteria"]["allOf"][0];
        let query = t
            .lit(&t.eval(frame, &crit["query"]))
            .unwrap_or_else(|| panic!("{sym}: the query is not a known string"));
        assert!(query.starts_with("traces "), "{sym}: {query}");
        assert!(
            query.contains("tostring(d.event) == \"drain_summary\""),
            "{sym}: {query}"
        );
        // Every field the query reads is one the handler logs.
        for (i, _) in query.match_indices("d.") {
            let field: String = query[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                field == "event" || mde_relay::metrics::SUMMARY_FIELDS.contains(&field.as_str()),
                "{sym}: the query reads d.{field}, which drain_summary does not log"
            );
        }
        let column = crit["metricMeasureColumn"]
            .as_str()
            .expect("measure column");
        assert!(
            query.contains(&format!("summarize {column} = ")),
            "{sym}: the query does not compute {column}: {query}"
        );
        assert!(query.ends_with(" by table"), "{sym}: {query}");
        assert_eq!(crit["dimensions"][0]["name"], "table", "{sym}");
        assert_eq!(crit["operator"], "GreaterThan", "{sym}");
        let threshold = match t.eval(frame, &crit["threshold"]) {
            V::Num(n) => n,
            v => panic!("{sym}: threshold {v:?}"),
        };
        // Notifications go to the action group given to main.bicep.
        let mut r = Vec::new();
        refs(&props["actions"], &mut r);
        let file = t.file(&frame.file);
        let mut names = r.clone();
        for v in &r {
            if let Some(var) = file["variables"].get(v) {
                refs(&var["value"], &mut names);
            }
        }
        let (caller, module) = frame.caller.as_ref().expect("rules live in a module");
        let caller_params = &Template::body(&t.file(&caller.file)["modules"][module])["params"];
        let passes_group = names.iter().any(|n| {
            let mut up = Vec::new();
            refs(&caller_params[n], &mut up);
            up.iter().any(|u| u == "alertActionGroupId")
        });
        assert!(
            passes_group,
            "{sym}: actions do not come from main.bicep's alertActionGroupId"
        );
        seen.insert(
            column.to_string(),
            (threshold, crit["timeAggregation"].clone()),
        );
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["dead_letters", "lag_seconds"],
        "one rule on lag, one on dead letters"
    );
    assert_eq!(
        seen["lag_seconds"].0, 1800,
        "lag threshold: main.bicep's default"
    );
    assert_eq!(seen["lag_seconds"].1, "Maximum");
    assert_eq!(
        seen["dead_letters"].0, 0,
        "any dead letter alerts by default"
    );
    assert_eq!(seen["dead_letters"].1, "Total");
}
