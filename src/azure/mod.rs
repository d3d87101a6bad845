//! Azure Storage connections: turns a Functions-style connection setting into clients of the
//! official SDK crates.
//!
//! A connection named `Conn` is either
//! * a connection string in the setting `Conn` itself: `UseDevelopmentStorage=true` (Azurite),
//!   `AccountName=…;AccountKey=…` (optionally with `BlobEndpoint`/`QueueEndpoint`/
//!   `EndpointSuffix`/`DefaultEndpointsProtocol`), or `BlobEndpoint=…;SharedAccessSignature=…`;
//! * or identity-based prefix settings (platform facts §4): `Conn__blobServiceUri`,
//!   `Conn__queueServiceUri`, `Conn__accountName`, `Conn__credential` (`managedidentity`, the
//!   default) and `Conn__clientId` for a user-assigned identity.
//!
//! Which Entra ID credential an identity-based connection uses is `RELAY_CREDENTIAL`
//! ([`token_credential`]): the managed identity (the default, what the Functions app runs with),
//! the signed-in Azure CLI (`az login`, for `status` and `redrive` from a workstation), or
//! `auto`, the managed identity where the platform offers one and the Azure CLI elsewhere.
//! `Conn__credential` is the Functions host's setting and only names `managedidentity`; the
//! relay honours `RELAY_CREDENTIAL` over it, so the app's settings can be copied to a
//! workstation as they are.
//!
//! The official crates have no shared-key authentication (platform facts §5), so an account key
//! is used to sign a short-lived **account SAS** ([`account_sas`]) that goes in the service URL.
//! Clients are cheap: build them when needed so the SAS is always fresh. The SAS is the narrowest
//! the client needs ([`SasScope`]): one service, https only (http only for a loopback emulator),
//! [`SAS_LIFETIME`], and for the export account ([`StorageAccount::read_only`]) read and list.
//! [`blob`] holds the blob plumbing the source, checkpoint and dead-letter stores share (client
//! cache, not-found test, container creation).
//!
//! Endpoints must be https; `http://` is accepted only on a literal loopback host (Azurite), so
//! a connection string cannot send keys, SAS tokens and export rows over plain HTTP
//! ([`crate::loopback`]).

pub mod blob;

use azure_core::credentials::TokenCredential;
use azure_core::http::Url;
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use azure_storage_queue::{QueueServiceClient, QueueServiceClientOptions};
use base64::Engine;
use hmac::{Hmac, Mac};
use std::fmt;
use std::sync::Arc;

mod credential;
pub use credential::{token_credential, CredentialKind, CREDENTIAL_SETTING};

/// Azurite's documented development account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's documented, public development key (not a secret).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// SAS version signed by [`account_sas`].
pub const SAS_VERSION: &str = "2022-11-02";
/// Lifetime of the account SAS signed for each client: a client is rebuilt well before
/// ([`blob::CLIENT_MAX_AGE`], and per batch by the queue sink).
pub const SAS_LIFETIME: chrono::Duration = chrono::Duration::minutes(20);

/// A connection setting that cannot be used. The message names the setting and never contains
/// its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting `{setting}`: {message}")]
pub struct ConnectionError {
    /// The offending setting.
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

fn err(setting: &str, message: impl Into<String>) -> ConnectionError {
    ConnectionError {
        setting: setting.to_string(),
        message: message.into(),
    }
}

/// How requests are authorized.
#[derive(Clone)]
enum Auth {
    /// Shared key: sign an account SAS per client.
    Key { account: String, key: Vec<u8> },
    /// A SAS token given in the connection string (without leading `?`).
    Sas(String),
    /// Entra ID tokens (managed identity or Azure CLI).
    Token(Arc<dyn TokenCredential>, CredentialKind),
}

/// One storage account and how to reach it.
#[derive(Clone)]
pub struct StorageAccount {
    setting: String,
    blob: Option<Url>,
    queue: Option<Url>,
    auth: Auth,
    /// Only read and list: what a signed SAS allows (the export account).
    read_only: bool,
}

impl fmt::Debug for StorageAccount {
    // Hand-written so keys and SAS tokens never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::Key { .. } => "account key",
            Auth::Sas(_) => "shared access signature",
            Auth::Token(_, CredentialKind::ManagedIdentity) => "managed identity",
            Auth::Token(_, CredentialKind::AzureCli) => "Azure CLI",
        };
        f.debug_struct("StorageAccount")
            .field("setting", &self.setting)
            .field("blob", &self.blob.as_ref().map(Url::as_str))
            .field("queue", &self.queue.as_ref().map(Url::as_str))
            .field("auth", &auth)
            .finish()
    }
}

/// Parses an endpoint URL, dropping a trailing `/` (a `//container` path is rejected by the
/// service and by Azurite).
fn endpoint(setting: &str, s: &str) -> Result<Url, ConnectionError> {
    let mut u = Url::parse(s.trim())
        .map_err(|e| err(setting, format!("endpoint is not a valid URL ({e})")))?;
    if u.cannot_be_a_base() || !matches!(u.scheme(), "http" | "https") {
        return Err(err(setting, "endpoint must be an http(s) URL"));
    }
    if u.scheme() == "http" && !crate::loopback::is_literal_loopback(&u) {
        return Err(err(
            setting,
            format!(
                "endpoint {}://{} uses plain http off loopback: storage endpoints must be https \
                 (http is accepted only on 127.0.0.1, [::1] or localhost, e.g. Azurite)",
                u.scheme(),
                u.host_str().unwrap_or("")
            ),
        ));
    }
    let path = u.path().trim_end_matches('/').to_string();
    u.set_path(&path);
    u.set_query(None);
    u.set_fragment(None);
    Ok(u)
}

impl StorageAccount {
    /// Reads the connection named `name` from the environment.
    pub fn from_env(name: &str) -> Result<Self, ConnectionError> {
        Self::from_lookup(name, &|k| crate::config::env(k))
    }

    /// Reads the connection named `name` through `get` (an environment lookup).
    pub fn from_lookup(
        name: &str,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectionError> {
        if let Some(cs) = get(name) {
            return Self::from_connection_string(name, &cs);
        }
        let key = |suffix: &str| format!("{name}__{suffix}");
        let account = get(&key("accountName"));
        let blob = match (
            get(&key("blobServiceUri")).or(get(&key("serviceUri"))),
            &account,
        ) {
            (Some(u), _) => Some(endpoint(&key("blobServiceUri"), &u)?),
            (None, Some(a)) => Some(endpoint(
                &key("accountName"),
                &format!("https://{a}.blob.core.windows.net"),
            )?),
            (None, None) => None,
        };
        let queue = match (get(&key("queueServiceUri")), &account) {
            (Some(u), _) => Some(endpoint(&key("queueServiceUri"), &u)?),
            (None, Some(a)) => Some(endpoint(
                &key("accountName"),
                &format!("https://{a}.queue.core.windows.net"),
            )?),
            (None, None) => None,
        };
        if blob.is_none() && queue.is_none() {
            return Err(err(
                name,
                format!("not set: give a connection string in `{name}`, or `{name}__blobServiceUri` / `{name}__accountName` for a managed identity"),
            ));
        }
        for u in blob.iter().chain(queue.iter()) {
            if u.scheme() != "https" {
                return Err(err(
                    &key("blobServiceUri"),
                    "identity-based connections need an https endpoint",
                ));
            }
        }
        let cred = get(&key("credential")).unwrap_or_else(|| "managedidentity".into());
        if !cred.eq_ignore_ascii_case("managedidentity") {
            return Err(err(
                &key("credential"),
                format!("unsupported credential `{cred}` (only `managedidentity`, the host's; choose the relay's with {CREDENTIAL_SETTING})"),
            ));
        }
        let kind = CredentialKind::from_lookup(get)?;
        let credential = token_credential(get, get(&key("clientId")), &key("credential"))?;
        Ok(StorageAccount {
            setting: name.to_string(),
            blob,
            queue,
            auth: Auth::Token(credential, kind),
            read_only: false,
        })
    }

    /// Parses a storage connection string held by setting `setting`.
    pub fn from_connection_string(setting: &str, cs: &str) -> Result<Self, ConnectionError> {
        let mut fields = std::collections::HashMap::new();
        for part in cs.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                err(
                    setting,
                    "connection string parts must look like `Name=value`",
                )
            })?;
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let f = |k: &str| fields.get(k).cloned();
        if f("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let host = f("developmentstorageproxyuri")
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| "http://127.0.0.1".into());
            return Ok(StorageAccount {
                setting: setting.to_string(),
                blob: Some(endpoint(
                    setting,
                    &format!("{host}:10000/{AZURITE_ACCOUNT}"),
                )?),
                queue: Some(endpoint(
                    setting,
                    &format!("{host}:10001/{AZURITE_ACCOUNT}"),
                )?),
                auth: Auth::Key {
                    account: AZURITE_ACCOUNT.into(),
                    key: base64::engine::general_purpose::STANDARD
                        .decode(AZURITE_KEY)
                        .expect("well-known key is base64"),
                },
                read_only: false,
            });
        }
        let account = f("accountname");
        let protocol = f("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
        let suffix = f("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
        let derive = |svc: &str| -> Option<String> {
            account
                .as_ref()
                .map(|a| format!("{protocol}://{a}.{svc}.{suffix}"))
        };
        let blob = f("blobendpoint")
            .or_else(|| derive("blob"))
            .map(|u| endpoint(setting, &u))
            .transpose()?;
        let queue = f("queueendpoint")
            .or_else(|| derive("queue"))
            .map(|u| endpoint(setting, &u))
            .transpose()?;
        if blob.is_none() && queue.is_none() {
            return Err(err(
                setting,
                "connection string names no account (AccountName) and no endpoint (BlobEndpoint/QueueEndpoint)",
            ));
        }
        let auth = if let Some(sas) = f("sharedaccesssignature") {
            Auth::Sas(sas.trim_start_matches('?').to_string())
        } else if let Some(k) = f("accountkey") {
            let account = account.ok_or_else(|| {
                err(
                    setting,
                    "AccountKey needs AccountName in the connection string",
                )
            })?;
            let key = base64::engine::general_purpose::STANDARD
                .decode(k)
                .map_err(|_| err(setting, "AccountKey is not valid base64"))?;
            Auth::Key { account, key }
        } else {
            return Err(err(
                setting,
                "connection string has neither AccountKey nor SharedAccessSignature",
            ));
        };
        Ok(StorageAccount {
            setting: setting.to_string(),
            blob,
            queue,
            auth,
            read_only: false,
        })
    }

    /// The same account for reading only: a SAS signed from its key allows read and list on
    /// the blob service and nothing else (the export account: the relay never writes there).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The name of the setting this account was read from.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// The blob service endpoint (no credentials, no trailing `/`).
    pub fn blob_endpoint(&self) -> Option<&Url> {
        self.blob.as_ref()
    }

    /// The queue service endpoint (no credentials, no trailing `/`).
    pub fn queue_endpoint(&self) -> Option<&Url> {
        self.queue.as_ref()
    }

    /// The endpoint with credentials applied (a SAS in the query) and the token credential, if
    /// any, ready for an SDK client constructor.
    fn authorized(&self, base: &Url, service: Service) -> (Url, Option<Arc<dyn TokenCredential>>) {
        let mut u = base.clone();
        match &self.auth {
            Auth::Key { account, key } => {
                let expiry = chrono::Utc::now() + SAS_LIFETIME;
                let scope = SasScope {
                    service,
                    read_only: self.read_only,
                    // `endpoint` accepted http only on loopback (Azurite).
                    allow_http: base.scheme() == "http",
                };
                u.set_query(Some(&account_sas(account, key, expiry, scope)));
                (u, None)
            }
            Auth::Sas(sas) => {
                u.set_query(Some(sas));
                (u, None)
            }
            Auth::Token(t, _) => (u, Some(t.clone())),
        }
    }

    /// A blob service client.
    pub fn blob_service(&self) -> Result<BlobServiceClient, ConnectionError> {
        self.blob_service_with(None)
    }

    /// A blob service client with client options (e.g. the SDK's own retries turned off by a
    /// caller that runs its own retry policy).
    pub fn blob_service_with(
        &self,
        options: Option<BlobServiceClientOptions>,
    ) -> Result<BlobServiceClient, ConnectionError> {
        let base = self
            .blob
            .as_ref()
            .ok_or_else(|| err(&self.setting, "has no blob endpoint"))?;
        let (url, cred) = self.authorized(base, Service::Blob);
        BlobServiceClient::new(url, cred, options)
            .map_err(|e| err(&self.setting, format!("cannot build blob client: {e}")))
    }

    /// A queue service client.
    pub fn queue_service(&self) -> Result<QueueServiceClient, ConnectionError> {
        self.queue_service_with(None)
    }

    /// A queue service client with client options.
    pub fn queue_service_with(
        &self,
        options: Option<QueueServiceClientOptions>,
    ) -> Result<QueueServiceClient, ConnectionError> {
        let base = self
            .queue
            .as_ref()
            .ok_or_else(|| err(&self.setting, "has no queue endpoint"))?;
        let (url, cred) = self.authorized(base, Service::Queue);
        QueueServiceClient::new(url, cred, options)
            .map_err(|e| err(&self.setting, format!("cannot build queue client: {e}")))
    }

    /// Splits a blob URL of this account into (container, blob name), percent-decoded. Fails
    /// when the URL points at another scheme, host, port or account path — such a URL must
    /// never be fetched.
    pub fn parse_blob_url(&self, url: &str) -> Result<(String, String), String> {
        let base = self.blob.as_ref().ok_or("no blob endpoint configured")?;
        let u = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if u.scheme() != base.scheme()
            || !u
                .host_str()
                .unwrap_or("")
                .eq_ignore_ascii_case(base.host_str().unwrap_or(""))
            || u.port_or_known_default() != base.port_or_known_default()
        {
            return Err(format!(
                "blob URL host {}://{} is not the configured account {}://{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                base.scheme(),
                base.host_str().unwrap_or("")
            ));
        }
        let prefix = base.path().trim_end_matches('/');
        let rest = u
            .path()
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| format!("blob URL path is outside the account path {prefix}/"))?;
        let (container, blob) = rest
            .split_once('/')
            .ok_or("blob URL has no blob name after the container")?;
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| format!("blob URL has bad percent-encoding: {s}"))
        };
        let (container, blob) = (decode(container)?, decode(blob)?);
        if container.is_empty() || blob.is_empty() {
            return Err("blob URL has an empty container or blob name".into());
        }
        Ok((container, blob))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A storage service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Blob service.
    Blob,
    /// Queue service.
    Queue,
}

/// What an account SAS allows: one service; read and list only, or what the relay's own
/// storage needs (blob: read, write, delete, list, add, create; queue: read, delete, add, create,
/// update, process); https only unless `allow_http` (a loopback emulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SasScope {
    /// The service.
    pub service: Service,
    /// Read and list only.
    pub read_only: bool,
    /// Also allow http (only for a loopback endpoint).
    pub allow_http: bool,
}

/// Signs an account SAS for `scope` (service, container and object resources) valid until
/// `expiry`, as a URL query string. Follows the documented string-to-sign of SAS version
/// [`SAS_VERSION`].
pub fn account_sas(
    account: &str,
    key: &[u8],
    expiry: chrono::DateTime<chrono::Utc>,
    scope: SasScope,
) -> String {
    let ss = match scope.service {
        Service::Blob => "b",
        Service::Queue => "q",
    };
    let sp = match (scope.service, scope.read_only) {
        (_, true) => "rl",
        (Service::Blob, false) => "rwdlac",
        (Service::Queue, false) => "rdacup",
    };
    let spr = if scope.allow_http {
        "https,http"
    } else {
        "https"
    };
    let srt = "sco";
    let se = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // account, permissions, services, resource types, start, expiry, IP, protocol, version,
    // encryption scope (versions 2020-12-06 and later), each followed by a newline.
    let to_sign = format!("{account}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{SAS_VERSION}\n\n");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "sv={SAS_VERSION}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}",
        enc(&se),
        enc(spr),
        enc(&sig)
    )
}

#[cfg(test)]
mod tests;
