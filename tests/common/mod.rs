//! Helpers shared by integration tests: reaching Azurite and naming things uniquely.
#![allow(dead_code)]

pub mod drain;
pub mod http;

use mde_relay::azure::{StorageAccount, AZURITE_ACCOUNT, AZURITE_KEY};

/// Azurite's blob endpoint (`AZURITE_BLOB_ENDPOINT`, default the standard port).
pub fn blob_endpoint() -> String {
    std::env::var("AZURITE_BLOB_ENDPOINT")
        .unwrap_or_else(|_| format!("http://127.0.0.1:10000/{AZURITE_ACCOUNT}"))
}

/// Azurite's queue endpoint (`AZURITE_QUEUE_ENDPOINT`, default the standard port).
pub fn queue_endpoint() -> String {
    std::env::var("AZURITE_QUEUE_ENDPOINT")
        .unwrap_or_else(|_| format!("http://127.0.0.1:10001/{AZURITE_ACCOUNT}"))
}

/// A connection string for Azurite with explicit endpoints.
pub fn azurite_connection_string() -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};QueueEndpoint={}",
        blob_endpoint(),
        queue_endpoint()
    )
}

/// The Azurite account; panics with instructions when Azurite is not listening.
pub fn azurite() -> StorageAccount {
    for ep in [blob_endpoint(), queue_endpoint()] {
        let u = url::Url::parse(&ep).expect("endpoint URL");
        let addr = format!(
            "{}:{}",
            u.host_str().unwrap_or("127.0.0.1"),
            u.port().unwrap_or(80)
        );
        if std::net::TcpStream::connect(&addr).is_err() {
            panic!(
                "Azurite is not listening at {ep}. Run the test suite with `.ci/test`, which installs \
                 Azurite from npm and starts it, or start it yourself: \
                 `npx azurite --skipApiVersionCheck --loose` (and set AZURITE_BLOB_ENDPOINT / \
                 AZURITE_QUEUE_ENDPOINT if it is not on the default ports)."
            );
        }
    }
    StorageAccount::from_connection_string("AzureWebJobsStorage", &azurite_connection_string())
        .expect("Azurite connection string")
}

/// A unique lower-case name with `prefix`, valid for containers and queues.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `len` pseudo-random characters from `alphabet` (xorshift, deterministic per `seed`): event
/// padding that does not compress away.
pub fn noise(seed: u64, len: usize, alphabet: &[u8]) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(alphabet[(x % alphabet.len() as u64) as usize])
        })
        .collect()
}
