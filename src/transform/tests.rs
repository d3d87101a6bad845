//! Transforms on rows of several tables: every operator, function and literal, decoded JSON
//! columns, nulls, missing columns, the case rules; and every start-up error class.

use super::*;
use crate::rows::RowParser;
use serde_json::{json, Value as J};

const NET: &str = r#"{"Timestamp":"2026-01-01T10:00:00.1234567Z","DeviceId":"d1","DeviceName":"host1.contoso.com","ActionType":"ConnectionSuccess","RemoteIP":"8.8.8.8","RemoteIPType":"Public","RemotePort":443,"LocalPort":50000,"InitiatingProcessFileName":"PowerShell.exe","InitiatingProcessCommandLine":"powershell.exe -enc AAA","InitiatingProcessFolderPath":"C:\\Windows\\System32","ReportId":639199803770463703,"AdditionalFields":null,"RemoteUrl":""}"#;
const PROC: &str = r#"{"Timestamp":"2026-01-01T10:00:00Z","DeviceId":"d2","ActionType":"ProcessCreated","FileName":"cmd.exe","ProcessCommandLine":"cmd.exe /c whoami","InitiatingProcessParentFileName":"explorer.exe","InitiatingProcessVersionInfoCompanyName":"Microsoft","InitiatingProcessVersionInfoProductName":"Windows","AccountName":"alice","ReportId":7}"#;
const DEV: &str = r#"{"Timestamp":"2026-01-01T10:00:00Z","ActionType":"AsrExecutableEmailContentBlocked","FileName":"x.exe","AdditionalFields":"{\"IsAudit\":true,\"RuleId\":\"Abc-1\",\"Count\":3,\"Nested\":{\"List\":[1,\"two\"]}}","ReportId":9}"#;

fn tf(text: &str) -> Transforms {
    Transforms::parse(text, "test").unwrap_or_else(|e| panic!("{e}"))
}

fn line(table: &str, props: &str) -> String {
    format!(
        r#"{{"time":"2026-01-01T10:05:00Z","tenantId":"t","category":"AdvancedHunting-{table}","properties":{props}}}"#
    )
}

/// The row's properties after the transform, or `None` when it was filtered.
fn run(t: &Transforms, table: &str, props: &str) -> Option<J> {
    let l = line(table, props);
    let mut p = RowParser::new();
    let row = p.parse(l.as_bytes()).unwrap();
    let (_, info) = crate::tables::table_from_category(&row.category);
    let mut s = Scratch::default();
    match t.run(info, row.properties, row.pivots, &mut s) {
        Outcome::Drop => None,
        Outcome::Keep => Some(serde_json::from_slice(row.properties).unwrap()),
        Outcome::Rewrite => Some(serde_json::from_slice(&s.props).expect("valid JSON")),
    }
}

/// True when `where <cond>` keeps the row of `table`.
fn keeps(table: &str, props: &str, cond: &str) -> bool {
    run(&tf(&format!("{table} | where {cond}")), table, props).is_some()
}

fn net(cond: &str) -> bool {
    keeps("DeviceNetworkEvents", NET, cond)
}

fn err(text: &str) -> String {
    Transforms::parse(text, "RELAY_TRANSFORMS")
        .err()
        .unwrap_or_else(|| panic!("{text} was accepted"))
        .to_string()
}

#[test]
fn equality_is_case_sensitive_and_tilde_is_not() {
    assert!(net(r#"ActionType == "ConnectionSuccess""#));
    assert!(!net(r#"ActionType == "connectionsuccess""#));
    assert!(net(r#"ActionType != "connectionsuccess""#));
    assert!(net(r#"ActionType =~ "CONNECTIONSUCCESS""#));
    assert!(!net(r#"ActionType !~ "connectionSUCCESS""#));
    assert!(net(r#"RemotePort == 443 and LocalPort != 443"#));
    assert!(net("ReportId == 639199803770463703"));
    // A column before one already found by the scan, then one after it.
    assert!(net(
        r#"LocalPort == 50000 and RemoteIP == "8.8.8.8" and RemoteUrl == """#
    ));
}

#[test]
fn list_operators() {
    assert!(net(
        r#"ActionType in ("ConnectionFailed", "ConnectionSuccess")"#
    ));
    assert!(!net(r#"ActionType in ("connectionsuccess")"#));
    assert!(net(r#"ActionType in~ ("connectionsuccess")"#));
    assert!(!net(
        r#"ActionType !in ("ConnectionSuccess", "ConnectionAttempt")"#
    ));
    assert!(net(r#"ActionType !in ("connectionsuccess")"#));
    assert!(!net(r#"ActionType !in~ ("connectionsuccess")"#));
    assert!(net(
        r#"ActionType in (dynamic(["A", "ConnectionSuccess"]))"#
    ));
    assert!(net(r#"RemotePort in (80, 443)"#));
    assert!(net(
        r#"InitiatingProcessCommandLine has_any ("cmd", "PowerShell")"#
    ));
    assert!(!net(
        r#"InitiatingProcessCommandLine has_any ("power", "shell")"#
    ));
    assert!(net(
        r#"InitiatingProcessCommandLine has_any (dynamic(["x", "enc"]))"#
    ));
}

#[test]
fn has_matches_whole_terms_ignoring_case_and_contains_does_not_need_terms() {
    assert!(net(r#"InitiatingProcessCommandLine has "POWERSHELL.exe""#));
    assert!(net(r#"InitiatingProcessFolderPath has "system32""#));
    assert!(!net(r#"InitiatingProcessCommandLine has "power""#));
    assert!(net(r#"InitiatingProcessCommandLine !has "power""#));
    assert!(net(r#"InitiatingProcessCommandLine contains "SHELL""#));
    assert!(!net(r#"InitiatingProcessCommandLine !contains "shell""#));
    assert!(net(r#"InitiatingProcessFileName startswith "power""#));
    assert!(!net(r#"InitiatingProcessFileName !startswith "POWER""#));
    assert!(net(r#"InitiatingProcessFileName endswith ".EXE""#));
    assert!(!net(r#"InitiatingProcessFileName !endswith ".exe""#));
    assert!(keeps("DeviceEvents", DEV, r#"ActionType startswith "Asr""#));
}

#[test]
fn ordering_between_dates_and_regex() {
    assert!(net(
        "RemotePort > 442 and RemotePort >= 443 and RemotePort < 444 and RemotePort <= 443"
    ));
    assert!(!net("RemotePort > 443"));
    assert!(net("RemotePort between (400 .. 443)"));
    assert!(!net("RemotePort between (444 .. 500)"));
    assert!(net("RemotePort !between (444 .. 500)"));
    assert!(net("Timestamp > datetime(2026-01-01)"));
    assert!(net(
        "Timestamp between (datetime(2026-01-01T09:00:00Z) .. datetime(2026-01-01 11:00))"
    ));
    assert!(!net("Timestamp > datetime(2026-01-01T10:00:00.2Z)"));
    assert!(!net("Timestamp > ago(1h)"), "2026-01-01 is long ago");
    assert!(net("Timestamp < now()"));
    assert!(net("Timestamp < now(-1d) and Timestamp > ago(3650d)"));
    assert!(net(r#"RemoteIP matches regex @"^8\.8\.\d+\.\d+$""#));
    assert!(!net(r#"RemoteIP matches regex "^10\\.""#));
}

#[test]
fn logic_and_precedence() {
    assert!(net(r#"ActionType == "x" or RemoteIPType == "Public""#));
    assert!(!net(
        r#"ActionType == "x" or RemoteIPType == "Public" and RemotePort == 1"#
    ));
    assert!(net(
        r#"(ActionType == "x" or RemoteIPType == "Public") and RemotePort == 443"#
    ));
    assert!(net(r#"not(ActionType == "x")"#));
    assert!(!net(r#"not(RemotePort == 443)"#));
    assert!(net("true"));
    assert!(!net("false"));
}

#[test]
fn nulls_and_missing_columns() {
    // AdditionalFields is JSON null, LocalIP is missing, RemoteUrl is empty.
    assert!(net(
        "isnull(AdditionalFields) and isnull(LocalIP) and isnotnull(RemoteIP)"
    ));
    assert!(!net("isnotnull(LocalIP)"));
    assert!(net(
        "isempty(LocalIP) and isempty(RemoteUrl) and isnotempty(RemoteIP)"
    ));
    assert!(!net("isnotempty(RemoteUrl)"));
    // Every comparison with null is false, negated ones too.
    for cond in [
        r#"LocalIP == "x""#,
        r#"LocalIP != "x""#,
        r#"LocalIP !in ("x")"#,
        r#"LocalIP !has "x""#,
        r#"LocalIP !contains "x""#,
        "LocalPort2 > 1",
        "LocalIP !between (1 .. 2)",
        r#"LocalIP matches regex ".*""#,
    ] {
        let cond = cond.replace("LocalPort2", "toint(LocalIP)");
        assert!(!net(&cond), "{cond}");
    }
}

#[test]
fn literals() {
    assert!(net("ActionType == 'ConnectionSuccess'"));
    assert!(net(
        r#"InitiatingProcessFolderPath == "C:\\Windows\\System32""#
    ));
    assert!(net(
        r#"InitiatingProcessFolderPath == @"C:\Windows\System32""#
    ));
    assert!(net(
        r#"InitiatingProcessFolderPath == @'C:\Windows\System32'"#
    ));
    assert!(net(r#"strcat(@"a""b", 'c\'d') == "a\"bc'd""#));
    assert!(net("RemotePort == 443.0 and RemotePort > 4.4e2"));
    assert!(net("RemotePort > -1"));
    assert!(net(
        "ago(30m) > ago(1h) and ago(1d) < ago(90s) and ago(100ms) > ago(1.5h)"
    ));
    assert!(net("isnotnull(now()) and now() > datetime(2026-01-01)"));
    assert!(net("timespan(1h) == 60m and time(1d) == 24h"));
    assert!(net(
        r#"dynamic(["a", 1, true, null]) == dynamic(["a", 1, true, null])"#
    ));
}

#[test]
fn functions() {
    assert!(net(
        r#"tostring(RemotePort) == "443" and tostring(ReportId) == "639199803770463703""#
    ));
    assert!(net(
        r#"toint("42") == 42 and toint(RemotePort) == 443 and tolong("7") == 7"#
    ));
    assert!(net(r#"isnull(toint("x"))"#));
    assert!(net(
        r#"tolower(InitiatingProcessFileName) == "powershell.exe""#
    ));
    assert!(net(
        r#"toupper(InitiatingProcessFileName) == "POWERSHELL.EXE""#
    ));
    assert!(net(
        "strlen(RemoteIP) == 7 and strlen(RemoteUrl) == 0 and isnull(strlen(LocalIP))"
    ));
    assert!(net(
        r#"strcat(DeviceName, ":", RemotePort) == "host1.contoso.com:443""#
    ));
    assert!(net(r#"tostring(LocalIP) == """#));
}

#[test]
fn decoded_json_columns() {
    let dev = |cond: &str| keeps("DeviceEvents", DEV, cond);
    assert!(dev("AdditionalFields.IsAudit == true"));
    assert!(dev(r#"AdditionalFields["RuleId"] == "Abc-1""#));
    assert!(dev(r#"AdditionalFields.RuleId =~ "abc-1""#));
    assert!(dev("AdditionalFields.Count > 2"));
    assert!(dev(
        r#"AdditionalFields.Nested.List[1] == "two" and AdditionalFields.Nested.List[-2] == 1"#
    ));
    assert!(dev(
        "isnull(AdditionalFields.Missing) and isnull(AdditionalFields.Nested.List[5])"
    ));
    assert!(
        dev(r#"AdditionalFields has "abc""#),
        "has searches the JSON text"
    );
    assert!(dev(
        r#"tostring(AdditionalFields.Nested) == '{"List":[1,"two"]}'"#
    ));
    // A free-text column holding JSON-looking text is not decoded.
    let props = r#"{"ActionType":"x","ProcessCommandLine":"{\"a\":1}"}"#;
    assert!(keeps(
        "DeviceProcessEvents",
        props,
        "isnull(ProcessCommandLine.a)"
    ));
}

#[test]
fn project_operators() {
    let t = tf("DeviceProcessEvents | project-away InitiatingProcessParentFileName, InitiatingProcessVersionInfo*");
    let out = run(&t, "DeviceProcessEvents", PROC).unwrap();
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "AccountName",
            "ActionType",
            "DeviceId",
            "FileName",
            "ProcessCommandLine",
            "ReportId",
            "Timestamp"
        ]
    );

    let t = tf("DeviceProcessEvents | project FileName, Account = strcat(AccountName, '@x'), InitiatingProcessVersionInfo*, SHA1");
    let out = run(&t, "DeviceProcessEvents", PROC).unwrap();
    assert_eq!(
        out,
        json!({"FileName":"cmd.exe","Account":"alice@x","InitiatingProcessVersionInfoCompanyName":"Microsoft","InitiatingProcessVersionInfoProductName":"Windows","SHA1":null})
    );

    let t =
        tf("DeviceProcessEvents | project-keep File*, ReportId | project-rename Name = FileName");
    assert_eq!(
        run(&t, "DeviceProcessEvents", PROC).unwrap(),
        json!({"Name":"cmd.exe","ReportId":7})
    );

    let t = tf(
        r#"DeviceProcessEvents | extend Who = toupper(AccountName), FileName = "x", Both = strcat(Who, FileName) | where Both == "ALICEx" | project Who, Both, FileName"#,
    );
    assert_eq!(
        run(&t, "DeviceProcessEvents", PROC).unwrap(),
        json!({"Who":"ALICE","Both":"ALICEx","FileName":"x"})
    );

    let t = tf(
        r#"DeviceEvents | extend Rule = AdditionalFields.RuleId, Obj = AdditionalFields.Nested | project Rule, Obj, AdditionalFields"#,
    );
    let out = run(&t, "DeviceEvents", DEV).unwrap();
    assert_eq!(out["Rule"], "Abc-1");
    assert_eq!(out["Obj"], json!({"List":[1,"two"]}));
    assert!(
        out["AdditionalFields"].is_string(),
        "kept as the row had it; the normalizer decodes it"
    );
}

#[test]
fn rewritten_rows_keep_untouched_values_byte_for_byte() {
    let t = tf("DeviceNetworkEvents | project-away RemoteUrl");
    let l = line("DeviceNetworkEvents", NET);
    let mut p = RowParser::new();
    let row = p.parse(l.as_bytes()).unwrap();
    let mut s = Scratch::default();
    let info = crate::tables::lookup("DeviceNetworkEvents");
    assert_eq!(
        t.run(info, row.properties, row.pivots, &mut s),
        Outcome::Rewrite
    );
    let text = std::str::from_utf8(&s.props).unwrap();
    assert!(text.contains(r#""ReportId":639199803770463703"#), "{text}");
    assert!(
        text.contains(r#""InitiatingProcessFolderPath":"C:\\Windows\\System32""#),
        "{text}"
    );
    assert!(!text.contains("RemoteUrl"));
}

#[test]
fn table_rules_run_before_star_rules_and_source_is_every_table() {
    let t = tf(r#"
        * | where ActionType != "Noise" | project-away AdditionalFields
        DeviceEvents
        | where ActionType startswith "Asr" or ActionType == "AntivirusDetection"
        | extend Audit = AdditionalFields.IsAudit
    "#);
    let out = run(&t, "DeviceEvents", DEV).unwrap();
    assert_eq!(
        out["Audit"], true,
        "the table rule saw AdditionalFields before * dropped it"
    );
    assert!(out.get("AdditionalFields").is_none());
    assert!(run(&t, "DeviceEvents", r#"{"ActionType":"Other"}"#).is_none());
    assert!(run(&t, "DeviceProcessEvents", r#"{"ActionType":"Noise"}"#).is_none());
    assert!(run(&t, "DeviceProcessEvents", PROC).is_some());
    // A table the registry does not know gets the * rules.
    assert!(run(&t, "BrandNewTable", r#"{"ActionType":"Noise"}"#).is_none());
    let out = run(
        &t,
        "BrandNewTable",
        r#"{"ActionType":"A","AdditionalFields":"{}"}"#,
    )
    .unwrap();
    assert_eq!(out, json!({"ActionType":"A"}));
    // `source` is the DCR name for the table at hand: every table here.
    let t = tf(r#"source | where ActionType == "Keep""#);
    assert!(run(&t, "AlertEvidence", r#"{"ActionType":"Keep"}"#).is_some());
    assert!(run(&t, "DeviceProcessEvents", PROC).is_none());
    // Rules without a matching table leave rows alone, with nothing re-serialized.
    let t = tf(r#"DeviceEvents | where ActionType == "x""#);
    assert!(t
        .program(crate::tables::lookup("DeviceProcessEvents"))
        .is_none());
    assert_eq!(t.named_tables(), ["DeviceEvents"]);
}

#[test]
fn where_only_programs_never_rewrite() {
    let t = tf(
        r#"DeviceNetworkEvents | where RemotePort == 443 | where InitiatingProcessFileName =~ "powershell.exe""#,
    );
    let l = line("DeviceNetworkEvents", NET);
    let mut p = RowParser::new();
    let row = p.parse(l.as_bytes()).unwrap();
    let mut s = Scratch::default();
    let info = crate::tables::lookup("DeviceNetworkEvents");
    assert_eq!(
        t.run(info, row.properties, row.pivots, &mut s),
        Outcome::Keep
    );
    assert!(s.props.is_empty());
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let e = err("DeviceNetworkEvents\n| where ActionType == \n");
    assert!(e.starts_with("RELAY_TRANSFORMS: 1 problem"), "{e}");
    assert!(
        e.contains("transform line 2, col 22: expected an expression"),
        "{e}"
    );
    assert!(
        e.contains("  | | where ActionType ==\n  |                      ^"),
        "{e}"
    );
    let e = err(r#"DeviceEvents | where ActionType == "x" and"#);
    assert!(e.contains("line 1, col 43"), "{e}");
    let e = err("DeviceEvents | where (ActionType == 'x'");
    assert!(e.contains("expected"), "{e}");
    let e = err("DeviceEvents where ActionType == 'x'");
    assert!(e.contains("line 1, col 14"), "{e}");
    let e = err(r#"DeviceEvents | where ActionType == "unterminated"#);
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn unknown_columns_tables_operators_and_functions_are_named_with_a_suggestion() {
    let e = err("DeviceEvents | where true\n\nDeviceNetworkEvents | where RemoteIp == \"1.2.3.4\"");
    assert!(e.contains("transform line 3, col 29: unknown column 'RemoteIp' in DeviceNetworkEvents (did you mean RemoteIP?)"), "{e}");
    assert!(e.contains(&format!("\n  | {}^", " ".repeat(28))), "{e}");
    let e = err("DeviceNetworkEvents | project RemotePrt");
    assert!(
        e.contains("unknown column 'RemotePrt' in DeviceNetworkEvents (did you mean RemotePort?)"),
        "{e}"
    );
    let e = err("* | project-away NoSuchColumnAnywhere");
    assert!(
        e.contains("unknown column 'NoSuchColumnAnywhere' in any table"),
        "{e}"
    );
    let e = err("DeviceNetworkEvents | project-away Foo*");
    assert!(
        e.contains("'Foo*' matches no column in DeviceNetworkEvents"),
        "{e}"
    );
    let e = err("DeviceNetworkEvents | project-away RemoteIP | where RemoteIP == 'x'");
    assert!(e.contains("col 53: unknown column 'RemoteIP'"), "{e}");
    let e = err("DeviceNetworkEvent | where true");
    assert!(
        e.contains("unknown table 'DeviceNetworkEvent' (did you mean DeviceNetworkEvents?)"),
        "{e}"
    );
    let e = err("devicenetworkevents | where true");
    assert!(e.contains("(did you mean DeviceNetworkEvents?)"), "{e}");
    let e = err("DeviceEvents | summarize count() by ActionType");
    assert!(
        e.contains("operator 'summarize' is not in the supported subset"),
        "{e}"
    );
    let e = err("DeviceEvents | projectaway FileName");
    assert!(e.contains("(did you mean project-away?)"), "{e}");
    let e = err("DeviceEvents | where tolowr(FileName) == 'x'");
    assert!(
        e.contains("unknown function 'tolowr' (did you mean tolower?)"),
        "{e}"
    );
    let e = err("DeviceEvents | where strlen(FileName, 2) == 1");
    assert!(e.contains("strlen() takes 1 argument(s), not 2"), "{e}");
    let e = err("DeviceEvents | where FileName matches regex '('");
    assert!(e.contains("invalid regex"), "{e}");
    let e = err("DeviceEvents | where Timestamp > datetime(yesterday)");
    assert!(
        e.contains("datetime(yesterday) is not a date and time"),
        "{e}"
    );
    // All problems at once, in text order.
    let e = err("DeviceEvents | where Foo == 1 | where Bar == 2");
    assert!(e.starts_with("RELAY_TRANSFORMS: 2 problems"), "{e}");
    // Columns the export adds to every row and AdditionalFields are always known.
    tf("DeviceProcessEvents | where MachineGroup == 'x' | project-away AdditionalFields");
}

#[test]
fn settings_take_a_file_or_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.kql");
    std::fs::write(&p, "DeviceEvents | where true").unwrap();
    let t = Transforms::from_setting(p.to_str().unwrap(), "RELAY_TRANSFORMS").unwrap();
    assert_eq!(t.named_tables(), ["DeviceEvents"]);
    let t =
        Transforms::from_setting("DeviceProcessEvents | where true", "RELAY_TRANSFORMS").unwrap();
    assert_eq!(t.named_tables(), ["DeviceProcessEvents"]);
    let e = Transforms::from_setting("/no/such/file.kql", "RELAY_TRANSFORMS").unwrap_err();
    assert!(
        format!("{e:#}").contains("RELAY_TRANSFORMS: cannot read transform file /no/such/file.kql"),
        "{e:#}"
    );
    std::fs::write(&p, "DeviceEvents | where Nope").unwrap();
    let e = Transforms::from_setting(p.to_str().unwrap(), "RELAY_TRANSFORMS").unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("RELAY_TRANSFORMS (") && e.contains("unknown column 'Nope'"),
        "{e}"
    );
}
