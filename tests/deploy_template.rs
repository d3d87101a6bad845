//! Checks the Bicep template in `infra/` against the code.
//!
//! Every `.bicep` file is parsed by a real Bicep parser (pycep-parser, through
//! `tests/python/bicep_to_json.py`); the parse is then evaluated here just far enough to follow
//! parameters, variables, module parameters, module outputs and `${}` interpolations. The checks:
//! every setting the binary requires in Azure is set (and every `RELAY_*` setting, with the
//! binary's own default); secrets come from `@secure()` parameters and stay out of outputs; the
//! queue `BlobCreated/function.json` listens on is the one Event Grid delivers into; the app runs
//! the custom handler on Flex Consumption; every role assignment is the intended built-in role on
//! the intended scope for the intended principal.
//!
//! The parser comes from PyPI (`.ci/test` installs it into `target/pycep-venv`). Without it the
//! tests fail and say how to get it.

use mde_relay::config::{Setting, SETTINGS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has pycep-parser: `PYCEP_PYTHON`, else the venv `.ci/test` makes, else `python3`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYCEP_PYTHON") {
        return p.into();
    }
    let venv = repo().join("target/pycep-venv/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// `{"files": {"main.bicep": <parse>, "modules/x.bicep": <parse>, ...}}`, parsed once per run.
fn parsed() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| {
        let py = python();
        let out = Command::new(&py)
            .arg(repo().join("tests/python/bicep_to_json.py"))
            .arg(repo().join("infra"))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): the Bicep checks need Python 3 with pycep-parser; \
                     run .ci/test, which installs it into target/pycep-venv",
                    py.display()
                )
            });
        assert!(
            out.status.success(),
            "parsing infra/**/*.bicep failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("bicep_to_json.py printed invalid JSON")
    })
}

struct Template {
    files: &'static serde_json::Map<String, Value>,
    /// Values given to main.bicep parameters (as a deployment would), overriding defaults.
    given: std::cell::RefCell<BTreeMap<String, V>>,
}

fn template() -> Template {
    Template {
        files: parsed()["files"]
            .as_object()
            .expect("bicep_to_json.py output has no `files`"),
        given: Default::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// A small evaluator over the parse
// ---------------------------------------------------------------------------------------------

/// Where an expression is evaluated: a file, and for a module, the module declaration that
/// instantiates it (its `params` give the module's parameters their values).
#[derive(Debug)]
struct Frame {
    file: String,
    caller: Option<(Rc<Frame>, String)>,
}

/// The value of an expression, as far as it is known before deployment.
#[derive(Debug, Clone)]
enum V {
    Str(String),
    Num(i64),
    Bool(bool),
    Null,
    Arr(Vec<V>),
    Obj(BTreeMap<String, V>),
    /// A resource or module symbol, with a property path (`storage.properties.primaryEndpoints`).
    Sym {
        frame: Rc<Frame>,
        sym: String,
        path: Vec<String>,
    },
    /// A function call, not evaluated (`subscriptionResourceId(...)`), with pycep's argument
    /// names (`resource_type`, `resource_name_1`, ...).
    Call(String, BTreeMap<String, V>),
    /// An operator, not evaluated (`a ? b : c`), with pycep's operand names (`condition`,
    /// `true_value`, ...).
    Op(String, BTreeMap<String, V>),
    /// A parameter with no value before deployment (required, no default).
    Param(String, String),
    /// A string with `${}` parts that are not all known.
    Interp(Vec<V>),
}

impl Template {
    fn file(&self, name: &str) -> &'static Value {
        self.files
            .get(name)
            .unwrap_or_else(|| panic!("{name} is referenced but was not parsed"))
    }

    fn root() -> Rc<Frame> {
        Rc::new(Frame {
            file: "main.bicep".into(),
            caller: None,
        })
    }

    /// A declaration's body, without the `if (...)` wrapper of a conditional one.
    fn body(decl: &Value) -> &Value {
        let c = &decl["config"];
        if c.get("condition").is_some() && c.get("config").is_some() {
            &c["config"]
        } else {
            c
        }
    }

    /// The file a module declaration points at, relative to `infra/`.
    fn module_file(from_file: &str, decl: &Value) -> String {
        let rel = decl["detail"]["path"]
            .as_str()
            .expect("only local modules are used");
        let base = Path::new(from_file).parent().unwrap_or(Path::new(""));
        let mut parts: Vec<String> = Vec::new();
        for c in base.join(rel).components() {
            match c {
                std::path::Component::ParentDir => {
                    parts.pop();
                }
                std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into()),
                _ => {}
            }
        }
        parts.join("/")
    }

    /// Every place a file is instantiated: main.bicep, and each module it (transitively) uses.
    fn frames(&self) -> Vec<Rc<Frame>> {
        let mut out = vec![Self::root()];
        let mut i = 0;
        while i < out.len() {
            let frame = out[i].clone();
            if let Some(mods) = self.file(&frame.file)["modules"].as_object() {
                for (sym, decl) in mods {
                    out.push(Rc::new(Frame {
                        file: Self::module_file(&frame.file, decl),
                        caller: Some((frame.clone(), sym.clone())),
                    }));
                }
            }
            i += 1;
        }
        out
    }

    /// Every resource declaration, with the frame it is instantiated in.
    fn resources(&self) -> Vec<(Rc<Frame>, String, &'static Value)> {
        let mut out = Vec::new();
        for frame in self.frames() {
            if let Some(res) = self.file(&frame.file)["resources"].as_object() {
                for (sym, decl) in res {
                    out.push((frame.clone(), sym.clone(), decl));
                }
            }
        }
        out
    }

    fn resources_of_type(&self, ty: &str) -> Vec<(Rc<Frame>, String, &'static Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, _, d)| d["type"] == ty)
            .collect()
    }

    fn decl(&self, frame: &Frame, sym: &str) -> &'static Value {
        let f = self.file(&frame.file);
        f["resources"]
            .get(sym)
            .or_else(|| f["modules"].get(sym))
            .unwrap_or_else(|| panic!("{}: no resource or module `{sym}`", frame.file))
    }

    fn eval(&self, frame: &Rc<Frame>, j: &Value) -> V {
        match j {
            Value::Null => V::Null,
            Value::Bool(b) => V::Bool(*b),
            Value::Number(n) => V::Num(n.as_i64().unwrap_or_default()),
            Value::String(s) => self.interpolate(frame, s),
            Value::Array(a) => V::Arr(a.iter().map(|x| self.eval(frame, x)).collect()),
            Value::Object(o) => {
                if let Some(name) = o.get("$ref").and_then(Value::as_str) {
                    return self.ident(frame, name);
                }
                if let (Some(f), 1) = (o.get("function"), o.len()) {
                    return V::Call(
                        f["type"].as_str().unwrap_or("?").into(),
                        self.eval_map(frame, &f["parameters"]),
                    );
                }
                if let (Some(op), 1) = (o.get("operator"), o.len()) {
                    let ty = op["type"].as_str().unwrap_or("?");
                    let operands = &op["operands"];
                    if ty == "property_accessor" {
                        let base = self.eval(frame, &operands["operand_1"]);
                        return match property_path(&operands["operand_2"]) {
                            Some(names) => self.access(base, &names),
                            None => opaque("access", base),
                        };
                    }
                    let args = self.eval_map(frame, operands);
                    if ty == "index_accessor" {
                        if let (Some(V::Arr(items)), Some(V::Num(i))) =
                            (args.get("operand_1"), args.get("operand_2"))
                        {
                            if let Some(v) = usize::try_from(*i).ok().and_then(|i| items.get(i)) {
                                return v.clone();
                            }
                        }
                    }
                    return V::Op(ty.into(), args);
                }
                V::Obj(
                    o.iter()
                        .map(|(k, v)| (k.clone(), self.eval(frame, v)))
                        .collect(),
                )
            }
        }
    }

    fn eval_map(&self, frame: &Rc<Frame>, j: &Value) -> BTreeMap<String, V> {
        j.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), self.eval(frame, v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn ident(&self, frame: &Rc<Frame>, name: &str) -> V {
        let f = self.file(&frame.file);
        if let Some(p) = f["parameters"].get(name) {
            if frame.caller.is_none() {
                if let Some(v) = self.given.borrow().get(name) {
                    return v.clone();
                }
            }
            if let Some((caller, module)) = &frame.caller {
                let decl = &self.file(&caller.file)["modules"][module];
                if let Some(arg) = Self::body(decl)["params"].get(name) {
                    return self.eval(caller, arg);
                }
            }
            return match p.get("default") {
                Some(d) if !d.is_null() => self.eval(frame, d),
                _ => V::Param(frame.file.clone(), name.into()),
            };
        }
        if let Some(v) = f["variables"].get(name) {
            return self.eval(frame, &v["value"]);
        }
        if f["resources"].get(name).is_some() || f["modules"].get(name).is_some() {
            return V::Sym {
                frame: frame.clone(),
                sym: name.into(),
                path: Vec::new(),
            };
        }
        opaque("unknown identifier", V::Str(name.into()))
    }

    fn access(&self, base: V, names: &[String]) -> V {
        if names.is_empty() {
            return base;
        }
        match base {
            V::Obj(m) => match m.get(&names[0]) {
                Some(v) => self.access(v.clone(), &names[1..]),
                None => opaque("missing property", V::Str(names[0].clone())),
            },
            V::Sym {
                frame,
                sym,
                mut path,
            } => {
                let decl = self.decl(&frame, &sym);
                // `module.outputs.x`: continue inside the module.
                if path.is_empty()
                    && names.len() >= 2
                    && names[0] == "outputs"
                    && decl.get("detail").is_some()
                {
                    let inner = Rc::new(Frame {
                        file: Self::module_file(&frame.file, decl),
                        caller: Some((frame.clone(), sym.clone())),
                    });
                    let out = &self.file(&inner.file)["outputs"][&names[1]]["value"];
                    let v = self.eval(&inner, out);
                    return self.access(v, &names[2..]);
                }
                path.extend(names.iter().cloned());
                V::Sym { frame, sym, path }
            }
            // Kept with its path: a deploy-time check may read a property of a value Resource
            // Manager computes (`reference(...).identity`), see [`concrete`].
            other => V::Op(
                "access".into(),
                BTreeMap::from([
                    ("value".to_string(), other),
                    (
                        "path".to_string(),
                        V::Arr(names.iter().map(|n| V::Str(n.clone())).collect()),
                    ),
                ]),
            ),
        }
    }

    /// `'a${b}c'`: the identifier paths inside `${}` are evaluated; anything else stays opaque.
    fn interpolate(&self, frame: &Rc<Frame>, s: &str) -> V {
        if !s.contains("${") {
            return V::Str(s.into());
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(V::Str(rest[..start].into()));
            }
            let end = rest[start..]
                .find('}')
                .map(|e| start + e)
                .expect("unterminated ${ in a string");
            let expr = &rest[start + 2..end];
            let names: Vec<String> = expr.split('.').map(str::to_string).collect();
            let is_path = names.iter().all(|n| {
                !n.is_empty()
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !n.starts_with(|c: char| c.is_ascii_digit())
            });
            parts.push(if is_path {
                let base = self.ident(frame, &names[0]);
                self.access(base, &names[1..])
            } else {
                opaque("expression", V::Str(expr.into()))
            });
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(V::Str(rest.into()));
        }
        if parts.iter().all(|p| matches!(p, V::Str(_))) {
            V::Str(
                parts
                    .iter()
                    .map(|p| match p {
                        V::Str(s) => s.as_str(),
                        _ => unreachable!(),
                    })
                    .collect(),
            )
        } else {
            V::Interp(parts)
        }
    }

    /// A value known as a string before deployment; `res.name` counts when the name is known.
    fn lit(&self, v: &V) -> Option<String> {
        match v {
            V::Str(s) => Some(s.clone()),
            V::Sym { frame, sym, path } if path.len() == 1 && path[0] == "name" => {
                let name = &Self::body(self.decl(frame, sym))["name"];
                self.lit(&self.eval(frame, name))
            }
            _ => None,
        }
    }

    fn resource_type(&self, frame: &Frame, sym: &str) -> String {
        self.decl(frame, sym)["type"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }

    /// The symbol a value refers to, if it is `sym` or `sym.<path>`.
    fn target<'v>(&self, v: &'v V) -> Option<(&'v Rc<Frame>, &'v str, &'v [String])> {
        match v {
            V::Sym { frame, sym, path } => Some((frame, sym.as_str(), path.as_slice())),
            _ => None,
        }
    }

    /// The `parent:` of a resource, as a symbol in the same frame.
    fn parent(&self, frame: &Rc<Frame>, sym: &str) -> Option<String> {
        let p = Self::body(self.decl(frame, sym)).get("parent")?;
        match self.eval(frame, p) {
            V::Sym { sym, path, .. } if path.is_empty() => Some(sym),
            _ => None,
        }
    }

    /// The storage account a queue or container belongs to (through `parent:`).
    fn account_of(&self, frame: &Rc<Frame>, sym: &str) -> Option<String> {
        let mut cur = sym.to_string();
        loop {
            if self.resource_type(frame, &cur) == "Microsoft.Storage/storageAccounts" {
                return Some(cur);
            }
            cur = self.parent(frame, &cur)?;
        }
    }

    /// The storage account a resource belongs to, as the frame file and symbol that *declare*
    /// the account: an `existing` account in a module whose name is another account's `.name`
    /// is that account.
    fn account_key(&self, frame: &Rc<Frame>, sym: &str) -> Option<(String, String)> {
        let acct = self.account_of(frame, sym)?;
        let decl = self.decl(frame, &acct);
        if decl["existing"] == Value::Bool(true) {
            if let V::Sym {
                frame: f2,
                sym: s2,
                path,
            } = self.eval(frame, &Self::body(decl)["name"])
            {
                if path == ["name"]
                    && self.resource_type(&f2, &s2) == "Microsoft.Storage/storageAccounts"
                {
                    return self.account_key(&f2, &s2);
                }
            }
        }
        Some((frame.file.clone(), acct))
    }

    /// The app settings of the one function app: name -> (value, the raw expression).
    fn app_settings(&self) -> BTreeMap<String, (V, &'static Value)> {
        let sites = self.resources_of_type("Microsoft.Web/sites");
        assert_eq!(sites.len(), 1, "expected one Microsoft.Web/sites resource");
        let (frame, _, decl) = &sites[0];
        let list = Self::body(decl)["properties"]["siteConfig"]["appSettings"]
            .as_array()
            .expect("the function app sets siteConfig.appSettings as a list");
        let mut out = BTreeMap::new();
        for item in list {
            let name = item["name"]
                .as_str()
                .expect("app setting names are literal strings")
                .to_string();
            let value = self.eval(frame, &item["value"]);
            assert!(
                out.insert(name.clone(), (value, &item["value"])).is_none(),
                "app setting {name} is set twice"
            );
        }
        out
    }

    fn param_decl(&self, file: &str, name: &str) -> Option<&'static Value> {
        self.file(file)["parameters"].get(name)
    }

    fn is_secure_param(&self, file: &str, name: &str) -> bool {
        self.param_decl(file, name)
            .and_then(|p| p["decorators"].as_array())
            .is_some_and(|d| d.iter().any(|d| d["type"] == "secure"))
    }
}

/// Something the evaluator does not compute, keeping what it was made of.
fn opaque(what: &str, v: V) -> V {
    V::Op(what.into(), BTreeMap::from([("value".to_string(), v)]))
}

/// `a.b.c` as pycep nests it on the right-hand side of a property accessor.
fn property_path(j: &Value) -> Option<Vec<String>> {
    if let Some(name) = j.get("$ref").and_then(Value::as_str) {
        return Some(vec![name.into()]);
    }
    let op = j.get("operator")?;
    if op["type"] != "property_accessor" {
        return None;
    }
    let mut head = property_path(&op["operands"]["operand_1"])?;
    head.extend(property_path(&op["operands"]["operand_2"])?);
    Some(head)
}

/// Whether a value depends on the parameter `name` of `file`.
fn mentions_param(v: &V, file: &str, name: &str) -> bool {
    match v {
        V::Param(f, n) => f == file && n == name,
        V::Arr(a) | V::Interp(a) => a.iter().any(|x| mentions_param(x, file, name)),
        V::Obj(m) | V::Call(_, m) | V::Op(_, m) => {
            m.values().any(|x| mentions_param(x, file, name))
        }
        _ => false,
    }
}

/// Every `$ref` name in a raw expression.
fn refs(j: &Value, out: &mut Vec<String>) {
    match j {
        Value::Object(o) => {
            if let Some(n) = o.get("$ref").and_then(Value::as_str) {
                out.push(n.into());
            }
            o.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The repository's function definitions
// ---------------------------------------------------------------------------------------------

/// `<Name>/function.json` beside host.json at the repo root.
fn function_jsons() -> Vec<(String, Value)> {
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
fn app_setting_ref(s: &str) -> Option<&str> {
    s.strip_prefix('%')?.strip_suffix('%')
}

fn setting_is_set(settings: &BTreeMap<String, (V, &Value)>, name: &str) -> bool {
    settings.contains_key(name) || settings.keys().any(|k| k.starts_with(&format!("{name}__")))
}

const SUBJECT_PREFIX: &str = "/blobServices/default/containers/";

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

/// Built-in role definition ids, checked against Microsoft's built-in roles reference.
const BUILT_IN_ROLES: &[(&str, &str)] = &[
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

fn is_guid(s: &str) -> bool {
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
fn principal_kind(t: &Template, v: &V) -> &'static str {
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

fn parameters_file(name: &str) -> serde_json::Map<String, Value> {
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
fn file_value(v: &Value) -> V {
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

// ---------------------------------------------------------------------------------------------
// Production hardening (issue 9): names, roles, sampling, deploy-time checks, the guide
// ---------------------------------------------------------------------------------------------

/// A value computed for given parameter values: what Resource Manager would get, or the message
/// of the `fail()` it would reach.
#[derive(Debug, PartialEq)]
enum Concrete {
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
fn message(v: &V) -> String {
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
fn concrete(v: &V) -> Result<Concrete, String> {
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

// ---------------------------------------------------------------------------------------------
// docs/deploy.md
// ---------------------------------------------------------------------------------------------

fn t_outputs() -> Vec<String> {
    template().file("main.bicep")["outputs"]
        .as_object()
        .expect("outputs")
        .keys()
        .cloned()
        .collect()
}

fn deploy_md() -> String {
    std::fs::read_to_string(repo().join("docs/deploy.md")).expect("docs/deploy.md")
}

/// The shell commands of the ```sh blocks of `text`, continuation lines joined.
fn shell_commands(text: &str) -> Vec<String> {
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
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {title}"))
        .unwrap_or_else(|| panic!("docs/deploy.md has no section `## {title}`"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map(|e| e + 3).unwrap_or(rest.len());
    &rest[..end]
}

/// Words that mark a command as touching the export account or what lives beside it.
const EXPORT_MARKERS: &[&str] = &[
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
fn kusto_blocks(text: &str) -> Vec<String> {
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

/// Settings whose value the template computes rather than takes from a parameter: the
/// logs-ingestion sink's client id (the app's user-assigned identity) and its endpoint and rule
/// id (the created rule's outputs, else the parameters, empty by default).
fn computed_by_the_template(t: &Template, name: &str, v: &V) -> bool {
    match name {
        "RELAY_LOGS_CLIENT_ID" => t.target(v).is_some_and(|(f, s, p)| {
            t.resource_type(f, s) == "Microsoft.ManagedIdentity/userAssignedIdentities"
                && p == ["properties", "clientId"]
        }),
        "RELAY_LOGS_ENDPOINT" | "RELAY_LOGS_RULE_ID" => {
            let V::Op(op, args) = v else { return false };
            // The module's output, resolved to what it reads in the module.
            let (ty, want): (&str, &[&str]) = if name == "RELAY_LOGS_ENDPOINT" {
                (
                    "Microsoft.Insights/dataCollectionEndpoints",
                    &["properties", "logsIngestion", "endpoint"],
                )
            } else {
                (
                    "Microsoft.Insights/dataCollectionRules",
                    &["properties", "immutableId"],
                )
            };
            let created = t.target(&args["true_value"]).is_some_and(|(f, s, p)| {
                f.file == "modules/logs-ingestion.bicep" && t.resource_type(f, s) == ty && p == want
            });
            op == "conditional"
                && created
                && matches!(&args["false_value"], V::Str(s) if s.is_empty())
        }
        _ => false,
    }
}

#[test]
fn logs_ingestion_creates_the_table_the_rule_and_its_stream() {
    let t = template();
    let one = |ty: &str| {
        let r = t.resources_of_type(ty);
        assert!(!r.is_empty(), "no {ty}");
        r.into_iter()
            .find(|(f, _, _)| f.file == "modules/logs-ingestion.bicep")
            .unwrap_or_else(|| panic!("{ty} is not created by modules/logs-ingestion.bicep"))
    };
    // The custom table, with a column for each normalized field that matters in a query.
    let (f, _, table) = one("Microsoft.OperationalInsights/workspaces/tables");
    let body = Template::body(table);
    assert_eq!(
        t.lit(&t.eval(&f, &body["name"])).as_deref(),
        Some("MdeRelayEvents_CL")
    );
    let cols = match t.access(
        t.eval(&f, &body["properties"]),
        &["schema".into(), "columns".into()],
    ) {
        V::Arr(c) => c,
        other => panic!("columns: {other:?}"),
    };
    let col = |c: &V, k: &str| t.lit(&t.access(c.clone(), &[k.to_string()])).unwrap();
    let have: BTreeMap<String, String> = cols
        .iter()
        .map(|c| (col(c, "name"), col(c, "type")))
        .collect();
    for (name, ty) in [
        ("TimeGenerated", "datetime"),
        ("Table", "string"),
        ("Id", "string"),
        ("MdeTenantId", "string"),
        ("Timestamp", "datetime"),
        ("DeviceId", "string"),
        ("DeviceName", "string"),
        ("ActionType", "string"),
        ("ReportId", "string"),
        ("Properties", "dynamic"),
        ("Source", "dynamic"),
    ] {
        assert_eq!(
            have.get(name).map(String::as_str),
            Some(ty),
            "column {name}"
        );
    }
    // Reserved in Log Analytics: a table that declares them fails to deploy.
    for reserved in ["TenantId", "Type"] {
        assert!(
            !have.contains_key(reserved),
            "{reserved} is a reserved column name"
        );
    }

    // An endpoint, and a rule on it whose stream is the sink's default stream and flows into
    // the table.
    one("Microsoft.Insights/dataCollectionEndpoints");
    let (f, _, rule) = one("Microsoft.Insights/dataCollectionRules");
    let props = t.eval(&f, &Template::body(rule)["properties"]);
    let stream = mde_relay::config::setting("RELAY_LOGS_STREAM")
        .and_then(|s| s.default)
        .unwrap();
    match t.access(props.clone(), &["streamDeclarations".into()]) {
        // pycep keeps the quotes of a quoted key.
        V::Obj(m) => assert!(
            m.keys().any(|k| k.trim_matches('\'') == stream),
            "stream {stream} not declared: {m:?}"
        ),
        other => panic!("streamDeclarations: {other:?}"),
    }
    let flow = match t.access(props.clone(), &["dataFlows".into()]) {
        V::Arr(f) => f[0].clone(),
        other => panic!("dataFlows: {other:?}"),
    };
    assert_eq!(
        t.lit(&t.access(flow.clone(), &["outputStream".into()]))
            .as_deref(),
        Some("Custom-MdeRelayEvents_CL")
    );
    let kql = t.lit(&t.access(flow, &["transformKql".into()])).unwrap();
    assert!(
        kql.contains("MdeTenantId") && kql.contains("TimeGenerated"),
        "{kql}"
    );
    assert!(matches!(
        t.access(props, &["dataCollectionEndpointId".into()]),
        V::Sym { .. }
    ));
    // The app is pointed at them.
    let settings = t.app_settings();
    assert_eq!(
        t.lit(&settings["RELAY_LOGS_STREAM"].0).as_deref(),
        Some(stream)
    );
}
