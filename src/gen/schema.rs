//! Rows for every table of the registry that has no hand-written writer in `tables.rs`: each
//! documented column (in the doc's order) gets a value of its documented type, shaped by its
//! name (ids, devices, accounts, addresses, hashes, URLs, ...), so demo data and benchmarks
//! cover tables like IdentityInfo, CloudAuditEvents or EntraIdSignInEvents.
//!
//! JSON columns carry JSON text inside a string (as Device*, Identity* and Cloud*
//! `AdditionalFields` do on the wire) or, for `dynamic` columns, sometimes a native
//! object/array; device-linked rows (those with a `DeviceId`) carry the export's `MachineGroup`.

use super::pools::{self, PROCS};
use super::*;
use crate::tables::TableInfo;

const ACTIONS: &[&str] = &[
    "Added",
    "Modified",
    "Deleted",
    "Read",
    "LogonSuccess",
    "PolicyApplied",
    "Accessed",
];
const APPS: &[&str] = &[
    "Microsoft 365",
    "Microsoft Teams",
    "Microsoft Exchange Online",
    "Microsoft SharePoint Online",
    "Azure Portal",
];
const COUNTRIES: &[&str] = &["DE", "AT", "CH", "NL", "US"];
const WORDS: &[&str] = &[
    "Standard",
    "Übersicht",
    "Prüfung abgeschlossen",
    "営業部",
    "Finance 📈",
    "Ã¼bersicht",
    "Low",
    "High",
    "Enabled",
];

impl Generator {
    /// The `properties` members of one row of `info`, at event time `t`.
    pub(super) fn schema_row(&mut self, o: &mut Vec<u8>, info: &'static TableInfo, t: i64) {
        let dev = self.rng.index(self.devices.len());
        let user = if self.rng.chance(80) {
            self.devices[dev].user
        } else {
            self.rng.index(self.users.len())
        };
        for c in info.columns {
            let name = c.name;
            if info.is_json_column(name) {
                self.json_value(o, name, c.ty);
                continue;
            }
            match c.ty {
                "datetime" => {
                    let back = if name == "Timestamp" {
                        0
                    } else {
                        self.rng.below(30 * 86_400) as i64 * TICKS_PER_SEC
                    };
                    let d = self.digits();
                    ts(o, name, t - back, d);
                }
                "long" | "int" | "integer" => self.number(o, name, dev, t),
                "bool" | "boolean" | "nullable bool" => match self.rng.below(10) {
                    0 => null(o, name),
                    1 => raw(o, name, "0"),
                    _ => boolean(o, name, self.rng.chance(50)),
                },
                "real" => {
                    key(o, name);
                    let v = self.rng.below(1000);
                    o.extend_from_slice(format!("{}.{}", v / 10, v % 10).as_bytes());
                }
                "guid" => guid(o, &mut self.rng, name),
                _ => self.text(o, name, dev, user),
            }
        }
        if info.documents("DeviceId") && !info.documents("MachineGroup") {
            self.machine_group(o, dev);
        }
    }

    fn number(&mut self, o: &mut Vec<u8>, name: &str, dev: usize, t: i64) {
        if name == "ReportId" {
            self.report_id(o, dev, t, false);
        } else if name.ends_with("Port") {
            int(o, name, self.rng.range(1, 65_536) as i64);
        } else if name.ends_with("Id") || name.ends_with("ID") {
            int(o, name, self.rng.range(4, 60_000) as i64);
        } else {
            int(o, name, self.rng.below(500) as i64);
        }
    }

    /// A string column, shaped by its name.
    fn text(&mut self, o: &mut Vec<u8>, name: &str, dev: usize, user: usize) {
        let d = &self.devices[dev];
        let u = &self.users[user];
        let lower = name.to_ascii_lowercase();
        let has = |s: &str| lower.contains(s);
        if self.rng.chance(4) && name != "ReportId" {
            // The export writes "" and null for "no value".
            if self.rng.chance(50) {
                s(o, name, "");
            } else {
                null(o, name);
            }
            return;
        }
        if name == "DeviceId" {
            s(o, name, &d.id);
        } else if name == "DeviceName" {
            s(o, name, &d.name);
        } else if name == "ReportId" {
            hex(o, &mut self.rng, name, 24);
        } else if name == "ActionType" {
            s(o, name, self.rng.pick::<&str>(ACTIONS));
        } else if has("upn") || has("email") || has("address") && has("mail") {
            s(o, name, &u.upn);
        } else if has("sid") {
            s(o, name, &u.sid);
        } else if has("objectid") {
            s(o, name, &u.object_id);
        } else if has("accountname") || name == "AccountDisplayName" {
            s(o, name, u.name);
        } else if has("domain") {
            s(o, name, u.domain);
        } else if has("ipaddress") || name.ends_with("IP") || name.ends_with("Ip") {
            let ip = if self.rng.chance(50) {
                d.local_ip.clone()
            } else {
                d.public_ip.clone()
            };
            s(o, name, &ip);
        } else if has("sha256") {
            hex(o, &mut self.rng, name, 64);
        } else if has("sha1") {
            hex(o, &mut self.rng, name, 40);
        } else if has("md5") {
            hex(o, &mut self.rng, name, 32);
        } else if has("url") || has("uri") {
            s(o, name, self.rng.pick::<&str>(pools::REMOTE_URLS));
        } else if has("filename") {
            s(o, name, self.rng.pick(PROCS).file);
        } else if has("folderpath") || has("path") {
            s(o, name, self.rng.pick(PROCS).path);
        } else if has("country") {
            s(o, name, self.rng.pick::<&str>(COUNTRIES));
        } else if has("application") || name == "Workload" {
            s(o, name, self.rng.pick::<&str>(APPS));
        } else if name.ends_with("Id") || name.ends_with("ID") {
            guid(o, &mut self.rng, name);
        } else if name.ends_with("Port") {
            // Ports typed string arrive as text (and as "" when unknown).
            s(o, name, &self.rng.range(1, 65_536).to_string());
        } else {
            s(o, name, self.rng.pick::<&str>(WORDS));
        }
    }

    /// A JSON column: JSON text in a string (always for documented strings and
    /// `AdditionalFields`), or for other `dynamic` columns sometimes the native value.
    fn json_value(&mut self, o: &mut Vec<u8>, name: &str, ty: &str) {
        match self.rng.below(10) {
            0 => return s(o, name, ""),
            1 => return null(o, name),
            _ => {}
        }
        let mut inner = std::mem::take(&mut self.inner);
        inner.clear();
        if self.rng.chance(60) {
            inner.extend_from_slice(b"{\"Source\":\"");
            inner.extend_from_slice(self.rng.pick(APPS).as_bytes());
            inner.extend_from_slice(b"\",\"Count\":");
            inner.extend_from_slice(itoa::Buffer::new().format(self.rng.below(100)).as_bytes());
            // Values can be JSON text themselves (platform facts §1); they stay strings.
            inner.extend_from_slice(b",\"Tags\":\"[\\\"a\\\",\\\"b\\\"]\",\"Note\":\"");
            esc(&mut inner, self.rng.pick(WORDS).as_bytes());
            inner.extend_from_slice(b"\"}");
        } else {
            inner.extend_from_slice(b"[\"");
            inner.extend_from_slice(self.rng.pick(COUNTRIES).as_bytes());
            inner.extend_from_slice(b"\",\"");
            inner.extend_from_slice(self.rng.pick(ACTIONS).as_bytes());
            inner.extend_from_slice(b"\"]");
        }
        let native =
            ty != "string" && name != crate::tables::ADDITIONAL_FIELDS && self.rng.chance(50);
        key(o, name);
        if native {
            o.extend_from_slice(&inner);
        } else {
            o.push(b'"');
            esc(o, &inner);
            o.push(b'"');
        }
        self.inner = inner;
    }
}
