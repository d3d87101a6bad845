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

// The tests, by subject (tests/deploy_template/); each module's helpers are shared.
#[path = "deploy_template/guide.rs"]
mod guide;
#[path = "deploy_template/hardening.rs"]
mod hardening;
#[path = "deploy_template/logs.rs"]
mod logs;
#[path = "deploy_template/roles.rs"]
mod roles;
#[path = "deploy_template/template.rs"]
mod template;
#[allow(unused_imports)]
use guide::*;
#[allow(unused_imports)]
use hardening::*;
#[allow(unused_imports)]
use logs::*;
#[allow(unused_imports)]
use roles::*;
#[allow(unused_imports)]
use template::*;
