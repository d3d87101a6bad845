//! Synthetic export rows for tests, benchmarks and the demo data (`mde-relay gen`).
//!
//! Rows look like the real streaming export (platform facts §1): the envelope in the export's
//! key order (`time`, `tenantId`, `operationName`, `category`, `_TimeReceivedBySvc`,
//! `properties`, `Tenant`), CRLF line ends, each table's real column set, `dynamic` columns as
//! JSON text inside JSON strings (and, on a few DeviceNetworkEvents rows, as a native object),
//! integer `ReportId`s above 2^53 on Device tables, string `ReportId`s elsewhere, timestamps with
//! 0 to 7 fractional digits, `MachineGroup` sometimes `null` or `"UnassignedGroup"`, nulls and
//! empty strings where the export has them, and non-ASCII text (umlauts, CJK, emoji,
//! mis-decoded "Ã¼") in names, paths and command lines.
//!
//! Output is a pure function of table and seed: the random stream is PCG-64 (MCG variant) from
//! `rand_pcg`, whose output sequence is fixed by its specification, and every draw goes through
//! the few helpers on [`Rng`] here rather than `rand`'s distributions (whose algorithms may
//! change between releases).
//!
//! Rows are written straight into a reused byte buffer (no `serde_json::Value`, no per-row
//! allocation), so a gigabyte takes a few seconds.

mod json;
mod pools;
mod schema;
mod tables;

use json::*;

use pools::{Os, PROCS, USERS};
use rand::RngCore;
use rand_pcg::Pcg64Mcg;
use std::io::Write;

/// How much to generate.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// This many rows.
    Rows(u64),
    /// Rows until at least this many bytes were written: generation stops after the first row
    /// that reaches the size.
    Bytes(u64),
}

/// Tables with a hand-written writer (`tables.rs`: column values modelled on real export
/// captures), sorted by name. Every other table of the registry gets rows shaped by its
/// documented columns (`schema.rs`); [`gen_tables`] lists them all.
pub const SUPPORTED_TABLES: &[&str] = &[
    "AlertEvidence",
    "AlertInfo",
    "CloudAppEvents",
    "DeviceEvents",
    "DeviceFileCertificateInfo",
    "DeviceFileEvents",
    "DeviceImageLoadEvents",
    "DeviceInfo",
    "DeviceLogonEvents",
    "DeviceNetworkEvents",
    "DeviceNetworkInfo",
    "DeviceProcessEvents",
    "DeviceRegistryEvents",
    "EmailEvents",
    "IdentityLogonEvents",
];

/// Every table `gen` can write: each table of the registry ([`crate::tables::TABLES`]).
pub fn gen_tables() -> impl Iterator<Item = &'static str> {
    crate::tables::TABLES.iter().map(|t| t.name)
}

/// Writes synthetic rows of `table` to `out`, deterministic for a given `seed`. Returns the
/// number of rows written. The table name is matched case-insensitively; an unknown one is an
/// error listing [`gen_tables`].
pub fn generate(table: &str, seed: u64, limit: Limit, out: &mut dyn Write) -> anyhow::Result<u64> {
    let mut g = Generator::new(table, seed)?;
    // Rows are collected into one buffer and written in ~1 MiB pieces.
    const FLUSH_AT: usize = 1 << 20;
    let mut buf = Vec::with_capacity(FLUSH_AT + 64 * 1024);
    let mut rows = 0u64;
    let mut written = 0u64;
    loop {
        let done = match limit {
            Limit::Rows(n) => rows >= n,
            Limit::Bytes(n) => written >= n,
        };
        if done {
            break;
        }
        let before = buf.len();
        g.next_row(&mut buf);
        written += (buf.len() - before) as u64;
        rows += 1;
        if buf.len() >= FLUSH_AT {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    Ok(rows)
}

/// The registry spelling of a table `gen` supports (matched case-insensitively), or an error
/// naming the table and listing [`gen_tables`].
pub fn check_table(table: &str) -> anyhow::Result<&'static str> {
    Kind::from_name(table)
        .map(Kind::name)
        .or_else(|| crate::tables::lookup(table).map(|t| t.name))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "gen cannot generate table `{table}`; supported tables: {}",
                gen_tables().collect::<Vec<_>>().join(", ")
            )
        })
}

/// Which table a [`Generator`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AlertEvidence,
    AlertInfo,
    CloudAppEvents,
    DeviceEvents,
    DeviceFileCertificateInfo,
    DeviceFileEvents,
    DeviceImageLoadEvents,
    DeviceInfo,
    DeviceLogonEvents,
    DeviceNetworkEvents,
    DeviceNetworkInfo,
    DeviceProcessEvents,
    DeviceRegistryEvents,
    EmailEvents,
    IdentityLogonEvents,
}

impl Kind {
    const ALL: [Kind; 15] = [
        Kind::AlertEvidence,
        Kind::AlertInfo,
        Kind::CloudAppEvents,
        Kind::DeviceEvents,
        Kind::DeviceFileCertificateInfo,
        Kind::DeviceFileEvents,
        Kind::DeviceImageLoadEvents,
        Kind::DeviceInfo,
        Kind::DeviceLogonEvents,
        Kind::DeviceNetworkEvents,
        Kind::DeviceNetworkInfo,
        Kind::DeviceProcessEvents,
        Kind::DeviceRegistryEvents,
        Kind::EmailEvents,
        Kind::IdentityLogonEvents,
    ];

    fn name(self) -> &'static str {
        SUPPORTED_TABLES[self as usize]
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// The random stream. Only these helpers draw from it, so the output depends on nothing but
/// the PCG specification.
struct Rng(Pcg64Mcg);

impl Rng {
    fn new(seed: u64) -> Self {
        // Spread the seed over the 128-bit state (SplitMix64 twice); the MCG needs an odd state.
        let a = splitmix(seed);
        let b = splitmix(a);
        Rng(Pcg64Mcg::new(((a as u128) << 64 | b as u128) | 1))
    }
    fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in `0..n` (`n > 0`), by multiply-shift; the bias is far below anything visible.
    fn below(&mut self, n: u64) -> u64 {
        ((self.u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
    /// True with probability `pct`/100.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
    fn pick<'a, T>(&mut self, s: &'a [T]) -> &'a T {
        &s[self.index(s.len())]
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A simulated device.
struct Device {
    id: String,
    name: String,
    os: Os,
    group: Option<&'static str>,
    local_ip: String,
    public_ip: String,
    user: usize,
    aad_id: String,
    mac: String,
    /// Last small `ReportId` used on this device.
    counter: u64,
}

/// A simulated account.
struct User {
    name: &'static str,
    domain: &'static str,
    sid: String,
    object_id: String,
    upn: String,
}

/// Per-executable values fixed for the whole run.
struct ProcData {
    sha1: String,
    sha256: String,
    md5: String,
    /// The export lower-cases `InitiatingProcessFolderPath`.
    lower_path: String,
}

/// The alert AlertEvidence rows currently belong to.
struct AlertState {
    id: String,
    kind: usize,
    event_t: i64,
    left: u64,
}

/// Writes rows of one table. Create with [`Generator::new`], then call
/// [`Generator::next_row`] as often as needed.
pub struct Generator {
    /// The table's name.
    table: &'static str,
    /// The hand-written writer, when the table has one.
    kind: Option<Kind>,
    /// Otherwise the registry entry whose columns drive [`Generator::schema_row`].
    schema: Option<&'static crate::tables::TableInfo>,
    rng: Rng,
    tenant: String,
    devices: Vec<Device>,
    users: Vec<User>,
    procs: Vec<ProcData>,
    /// Indices into `PROCS` by OS.
    by_os: [Vec<usize>; 3],
    /// Current event time, 100 ns ticks since the Unix epoch.
    ticks: i64,
    /// Scratch for text assembled from templates (unescaped).
    tmp: Vec<u8>,
    /// Scratch for JSON-in-string column values (the inner JSON).
    inner: Vec<u8>,
    alert: Option<AlertState>,
}

/// 2026-11-24T09:00:00Z, where every run's clock starts.
const START_UNIX: i64 = 1_795_510_800;
const TICKS_PER_SEC: i64 = 10_000_000;
/// .NET ticks (the export's large `ReportId`s are in this range) at the Unix epoch.
const DOTNET_EPOCH_TICKS: i64 = 621_355_968_000_000_000;

impl Generator {
    /// A generator for `table` (case-insensitive), deterministic for `seed`.
    pub fn new(table: &str, seed: u64) -> anyhow::Result<Self> {
        let name = check_table(table)?;
        let kind = Kind::from_name(name);
        let schema = match kind {
            Some(_) => None,
            None => crate::tables::lookup(name),
        };
        // Each table gets its own stream, so one seed gives different devices per table.
        let mut rng = Rng::new(seed ^ fnv(name.as_bytes()));
        let hex = |rng: &mut Rng, n: usize| {
            let mut v = Vec::with_capacity(n);
            push_hex(&mut v, rng, n);
            String::from_utf8(v).expect("hex is ASCII")
        };
        // One tenant per seed, the same for every table.
        let tenant = guid_string(&mut Rng::new(seed));
        let users: Vec<User> = USERS
            .iter()
            .map(|&(name, domain)| User {
                name,
                domain,
                sid: format!(
                    "S-1-5-21-{}-{}-{}-{}",
                    rng.range(1_000_000_000, 4_000_000_000),
                    rng.range(1_000_000_000, 4_000_000_000),
                    rng.range(1_000_000_000, 4_000_000_000),
                    rng.range(1100, 9000)
                ),
                object_id: guid_string(&mut rng),
                upn: format!("{name}@{}", pools::UPN_SUFFIX),
            })
            .collect();
        let procs = PROCS
            .iter()
            .map(|p| {
                // Hashes depend on the executable only, like real ones.
                let mut r = Rng::new(fnv(p.path.as_bytes()));
                ProcData {
                    sha1: hex(&mut r, 40),
                    sha256: hex(&mut r, 64),
                    md5: hex(&mut r, 32),
                    lower_path: p.path.to_lowercase(),
                }
            })
            .collect();
        let mut by_os: [Vec<usize>; 3] = Default::default();
        for (i, p) in PROCS.iter().enumerate() {
            by_os[p.os as usize].push(i);
        }
        let devices = (0..48)
            .map(|i| {
                // Device 0 is always a Windows workstation, so Windows-only tables have one.
                let &(stem, os, suffix) = if i == 0 {
                    &pools::DEVICE_STEMS[0]
                } else {
                    rng.pick(pools::DEVICE_STEMS)
                };
                let name = match os {
                    Os::Mac => format!("{stem}{}", i + 10),
                    _ => format!("{stem}{:04}{suffix}", rng.range(1, 3000)),
                };
                Device {
                    id: hex(&mut rng, 40),
                    name,
                    os,
                    group: *rng.pick(pools::MACHINE_GROUPS),
                    local_ip: format!(
                        "10.{}.{}.{}",
                        rng.below(64),
                        rng.below(256),
                        rng.range(2, 255)
                    ),
                    public_ip: format!("203.0.113.{}", rng.range(1, 255)),
                    user: rng.index(USERS.len()),
                    aad_id: guid_string(&mut rng),
                    mac: {
                        let h = hex(&mut rng, 12).to_uppercase();
                        h.as_bytes()
                            .chunks(2)
                            .map(|c| std::str::from_utf8(c).expect("ASCII"))
                            .collect::<Vec<_>>()
                            .join("-")
                    },
                    counter: rng.range(1000, 40_000),
                }
            })
            .collect();
        Ok(Generator {
            table: name,
            kind,
            schema,
            rng,
            tenant,
            devices,
            users,
            procs,
            by_os,
            ticks: START_UNIX * TICKS_PER_SEC,
            tmp: Vec::with_capacity(1024),
            inner: Vec::with_capacity(4096),
            alert: None,
        })
    }

    /// The table this generator writes.
    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The tenant id every row carries.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Appends one row, CRLF-terminated, to `out`.
    pub fn next_row(&mut self, out: &mut Vec<u8>) {
        // Event times advance 0-200 ms per row; the export writes rows one to six minutes later.
        self.ticks += self.rng.below(2_000_000) as i64;
        let now = self.ticks;
        let (event_t, export_t) = match self.kind {
            Some(Kind::AlertInfo | Kind::AlertEvidence) => {
                // Alert rows arrive hours after the event.
                let back = self.rng.range(600, 20 * 3600) as i64 * TICKS_PER_SEC;
                (now - back, now)
            }
            _ => (now, now + self.rng.range(60, 360) as i64 * TICKS_PER_SEC),
        };
        let received_t = export_t - self.rng.range(5, 30_000) as i64 * 10_000;
        let email = self.table.starts_with("Email");

        out.extend_from_slice(b"{\"time\":\"");
        write_ts(out, export_t + self.rng.below(10_000) as i64, 7);
        out.extend_from_slice(b"Z\",\"tenantId\":\"");
        out.extend_from_slice(self.tenant.as_bytes());
        out.extend_from_slice(b"\",\"operationName\":\"Publish\",\"category\":\"AdvancedHunting-");
        out.extend_from_slice(self.table.as_bytes());
        out.extend_from_slice(b"\",\"_TimeReceivedBySvc\":\"");
        // Received times have millisecond precision padded to seven digits; Email tables write
        // them without the `Z`.
        write_ts(out, received_t - received_t.rem_euclid(10_000), 7);
        if !email {
            out.push(b'Z');
        }
        out.extend_from_slice(b"\",\"properties\":{");
        self.properties(out, event_t);
        out.extend_from_slice(b"},\"Tenant\":\"DefaultTenant\"}\r\n");
    }

    fn properties(&mut self, o: &mut Vec<u8>, t: i64) {
        let Some(kind) = self.kind else {
            let info = self
                .schema
                .expect("a table without a writer has a registry entry");
            return self.schema_row(o, info, t);
        };
        match kind {
            Kind::AlertEvidence => self.alert_evidence(o, t),
            Kind::AlertInfo => self.alert_info(o, t),
            Kind::CloudAppEvents => self.cloud_app_events(o, t),
            Kind::DeviceEvents => self.device_events(o, t),
            Kind::DeviceFileCertificateInfo => self.device_file_certificate_info(o, t),
            Kind::DeviceFileEvents => self.device_file_events(o, t),
            Kind::DeviceImageLoadEvents => self.device_image_load_events(o, t),
            Kind::DeviceInfo => self.device_info(o, t),
            Kind::DeviceLogonEvents => self.device_logon_events(o, t),
            Kind::DeviceNetworkEvents => self.device_network_events(o, t),
            Kind::DeviceNetworkInfo => self.device_network_info(o, t),
            Kind::DeviceProcessEvents => self.device_process_events(o, t),
            Kind::DeviceRegistryEvents => self.device_registry_events(o, t),
            Kind::EmailEvents => self.email_events(o, t),
            Kind::IdentityLogonEvents => self.identity_logon_events(o, t),
        }
    }
}

#[cfg(test)]
mod tests;
