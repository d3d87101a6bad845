//! Tests of the connection settings, SAS building and client cache of [`super`].

use super::*;

#[test]
fn clients_are_rebuilt_well_before_their_sas_expires() {
    let age = chrono::Duration::from_std(blob::CLIENT_MAX_AGE).unwrap();
    assert!(age * 2 <= SAS_LIFETIME);
}

#[test]
fn development_storage() {
    let a =
        StorageAccount::from_connection_string("AzureWebJobsStorage", "UseDevelopmentStorage=true")
            .unwrap();
    assert_eq!(
        a.blob_endpoint().unwrap().as_str(),
        "http://127.0.0.1:10000/devstoreaccount1"
    );
    assert_eq!(
        a.queue_endpoint().unwrap().as_str(),
        "http://127.0.0.1:10001/devstoreaccount1"
    );
    let dbg = format!("{a:?}");
    assert!(!dbg.contains("Eby8"), "{dbg}");
}

#[test]
fn account_key_string_with_suffix() {
    let cs = "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=a2V5;EndpointSuffix=core.windows.net";
    let a = StorageAccount::from_connection_string("MdeExportStorage", cs).unwrap();
    assert_eq!(
        a.blob_endpoint().unwrap().as_str(),
        "https://acme.blob.core.windows.net/"
    );
    let svc = a.blob_service().unwrap();
    assert!(svc.url().query().unwrap().contains("sig="));
    let q = svc.url().query().unwrap().to_string();
    assert!(q.contains("spr=https&") && q.contains("ss=b&"), "{q}");
    let ro = a.clone().read_only().blob_service().unwrap();
    assert!(ro.url().query().unwrap().contains("sp=rl&"));
    assert!(!format!("{a:?}").contains("a2V5"));
}

#[test]
fn sas_string() {
    let cs = "BlobEndpoint=https://acme.blob.core.windows.net/;SharedAccessSignature=?sv=x&sig=y";
    let a = StorageAccount::from_connection_string("C", cs).unwrap();
    assert_eq!(a.blob_service().unwrap().url().query(), Some("sv=x&sig=y"));
    assert!(a.queue_endpoint().is_none());
}

#[test]
fn bad_strings_name_the_setting_without_the_value() {
    for cs in [
        "AccountName=acme",
        "garbage",
        "AccountName=a;AccountKey=!!!",
    ] {
        let e = StorageAccount::from_connection_string("MdeExportStorage", cs).unwrap_err();
        assert_eq!(e.setting, "MdeExportStorage");
        assert!(!e.to_string().contains("!!!"));
    }
    let e = StorageAccount::from_lookup("MdeExportStorage", &|_| None).unwrap_err();
    assert!(
        e.to_string().contains("MdeExportStorage__blobServiceUri"),
        "{e}"
    );
}

#[test]
fn identity_based_settings() {
    let get = |k: &str| match k {
        "X__blobServiceUri" => Some("https://acme.blob.core.windows.net/".to_string()),
        "X__clientId" => Some("00000000-0000-0000-0000-000000000001".to_string()),
        _ => None,
    };
    let a = StorageAccount::from_lookup("X", &get).unwrap();
    assert_eq!(
        a.blob_endpoint().unwrap().as_str(),
        "https://acme.blob.core.windows.net/"
    );
    assert!(format!("{a:?}").contains("managed identity"));
    let http = |k: &str| (k == "X__blobServiceUri").then(|| "http://acme".to_string());
    assert!(StorageAccount::from_lookup("X", &http).is_err());
}

#[test]
fn blob_urls_of_other_accounts_are_refused() {
    let a = StorageAccount::from_connection_string("C", "UseDevelopmentStorage=true").unwrap();
    let ok = a
        .parse_blob_url("http://127.0.0.1:10000/devstoreaccount1/insights-logs-advancedhunting-deviceevents/tenantId%3Dx/y%3D2026/PT1H.json")
        .unwrap();
    assert_eq!(ok.0, "insights-logs-advancedhunting-deviceevents");
    assert_eq!(ok.1, "tenantId=x/y=2026/PT1H.json");
    for bad in [
        "http://evil.example:10000/devstoreaccount1/c/b",
        "http://127.0.0.1:10001/devstoreaccount1/c/b",
        "https://127.0.0.1:10000/devstoreaccount1/c/b",
        "http://127.0.0.1:10000/otheraccount/c/b",
        "http://127.0.0.1:10000/devstoreaccount1/c",
        "not a url",
    ] {
        assert!(a.parse_blob_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn sas_matches_a_known_signature() {
    // Recomputed independently: HMAC-SHA256 over the documented string-to-sign.
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let expiry = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let scope = SasScope {
        service: Service::Blob,
        read_only: true,
        allow_http: false,
    };
    let q = account_sas(AZURITE_ACCOUNT, &key, expiry, scope);
    assert!(
        q.starts_with(
            "sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2030-01-01T00%3A00%3A00Z&spr=https&sig="
        ),
        "{q}"
    );
    let q = account_sas(
        AZURITE_ACCOUNT,
        &key,
        expiry,
        SasScope {
            service: Service::Queue,
            read_only: false,
            allow_http: true,
        },
    );
    assert!(
        q.contains("&ss=q&srt=sco&sp=rdacup&") && q.contains("spr=https%2Chttp"),
        "{q}"
    );
}
