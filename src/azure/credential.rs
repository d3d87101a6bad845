//! The Entra ID credential of identity-based connections, chosen by `RELAY_CREDENTIAL`: the
//! managed identity (the default, what the Functions app runs with), the signed-in Azure CLI
//! (`az login`, for `status` and `redrive` from a workstation), or `auto`.

use super::{err, ConnectionError};
use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
};
use std::sync::Arc;

/// The setting that chooses the Entra ID credential.
pub const CREDENTIAL_SETTING: &str = "RELAY_CREDENTIAL";

/// An Entra ID credential `RELAY_CREDENTIAL` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// The platform's managed identity (`managedidentity`, the default).
    ManagedIdentity,
    /// The identity signed in to the Azure CLI (`azurecli`): `az account get-access-token`.
    AzureCli,
}

impl CredentialKind {
    /// The setting's value for this kind.
    pub fn name(self) -> &'static str {
        match self {
            CredentialKind::ManagedIdentity => "managedidentity",
            CredentialKind::AzureCli => "azurecli",
        }
    }

    /// Reads `RELAY_CREDENTIAL` through `get`: `managedidentity` (default) | `azurecli` |
    /// `auto`. `auto` takes the managed identity where the platform advertises one
    /// (`IDENTITY_ENDPOINT` on App Service, Functions and Container Apps, `MSI_ENDPOINT` on
    /// older hosts) and the Azure CLI elsewhere; a VM's identity (instance metadata, nothing in
    /// the environment) needs `managedidentity`.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConnectionError> {
        let v = get(CREDENTIAL_SETTING).unwrap_or_else(|| "managedidentity".into());
        match v.trim().to_ascii_lowercase().as_str() {
            "managedidentity" => Ok(CredentialKind::ManagedIdentity),
            "azurecli" => Ok(CredentialKind::AzureCli),
            "auto" => Ok(
                if get("IDENTITY_ENDPOINT").is_some() || get("MSI_ENDPOINT").is_some() {
                    CredentialKind::ManagedIdentity
                } else {
                    CredentialKind::AzureCli
                },
            ),
            other => Err(err(
                CREDENTIAL_SETTING,
                format!("must be managedidentity, azurecli or auto, not `{other}`"),
            )),
        }
    }
}

/// The credential `RELAY_CREDENTIAL` (read through `get`) names. `client_id` picks a
/// user-assigned managed identity and is ignored by the Azure CLI, which uses whoever signed in
/// (`az login`; `az account set` chooses the tenant's subscription). `setting` is the setting
/// errors name when the managed identity is unavailable. No token is fetched here.
pub fn token_credential(
    get: &dyn Fn(&str) -> Option<String>,
    client_id: Option<String>,
    setting: &str,
) -> Result<Arc<dyn TokenCredential>, ConnectionError> {
    match CredentialKind::from_lookup(get)? {
        CredentialKind::ManagedIdentity => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.map(UserAssignedId::ClientId),
                ..Default::default()
            };
            let c = ManagedIdentityCredential::new(Some(options)).map_err(|e| {
                err(
                    setting,
                    format!(
                        "managed identity unavailable: {e} (from a workstation set \
                         {CREDENTIAL_SETTING}=azurecli and `az login`)"
                    ),
                )
            })?;
            Ok(c)
        }
        CredentialKind::AzureCli => {
            let c = AzureCliCredential::new(None).map_err(|e| {
                err(
                    CREDENTIAL_SETTING,
                    format!("Azure CLI credential unavailable: {e}"),
                )
            })?;
            Ok(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::StorageAccount;

    #[test]
    fn relay_credential_chooses_the_token_source() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
                    .or_else(|| {
                        (k == "X__blobServiceUri")
                            .then(|| "https://acme.blob.core.windows.net".to_string())
                    })
            }
        };
        let kind = |pairs| CredentialKind::from_lookup(&with(pairs)).unwrap();
        assert_eq!(kind(&[]), CredentialKind::ManagedIdentity);
        assert_eq!(
            kind(&[("RELAY_CREDENTIAL", "AzureCli")]),
            CredentialKind::AzureCli
        );
        assert_eq!(
            kind(&[("RELAY_CREDENTIAL", "auto")]),
            CredentialKind::AzureCli
        );
        assert_eq!(
            kind(&[
                ("RELAY_CREDENTIAL", "auto"),
                ("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token")
            ]),
            CredentialKind::ManagedIdentity
        );
        let e =
            CredentialKind::from_lookup(&with(&[("RELAY_CREDENTIAL", "sharedkey")])).unwrap_err();
        assert_eq!(e.setting, "RELAY_CREDENTIAL");
        // The host's `__credential=managedidentity`, copied from the app, does not stop the CLI.
        let a = StorageAccount::from_lookup(
            "X",
            &with(&[
                ("RELAY_CREDENTIAL", "azurecli"),
                ("X__credential", "managedidentity"),
                ("X__clientId", "00000000-0000-0000-0000-000000000001"),
            ]),
        )
        .unwrap();
        assert!(format!("{a:?}").contains("Azure CLI"), "{a:?}");
    }
}
