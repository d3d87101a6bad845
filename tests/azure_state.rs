//! The Azure implementations of the seams against Azurite: the blob checkpoint store (leases,
//! conditional writes, listings, claims) and the blob source (properties, ranged reads,
//! listings).

mod common;
mod relay;

use chrono::Utc;
use mde_relay::source::{azure::AzureSource, BlobKey, BlobType, Source};
use mde_relay::state::{azure::BlobCheckpointStore, Checkpoint, CheckpointStore, StoreError};
use std::time::Duration;

#[tokio::test]
async fn checkpoint_store_leases_and_conditional_writes() {
    let account = common::azurite();
    let container = format!("state-{}", relay::suffix());
    let a = BlobCheckpointStore::new(account.clone(), &container);
    let b = BlobCheckpointStore::new(account, &container);
    let key = BlobKey::new(
        "insights-logs-advancedhunting-x",
        "tenantId=t/y=2026/m=01/d=01/h=00/m=00/PT1H.json",
    );
    let ttl = Duration::from_secs(15);

    let la = a.acquire(&key, ttl).await.unwrap().expect("first lease");
    assert!(
        b.acquire(&key, ttl).await.unwrap().is_none(),
        "held elsewhere"
    );
    assert!(
        a.get(&key).await.unwrap().is_none(),
        "placeholder is no checkpoint"
    );
    assert_eq!(
        b.list_open().await.unwrap(),
        vec![key.clone()],
        "marked open at once"
    );

    let mut cp = Checkpoint::new(&key, Utc::now());
    cp.offset = 10;
    cp.length = 12;
    let v1 = a.put(&la, &cp, None).await.unwrap();
    cp.offset = 20;
    assert!(matches!(
        a.put(&la, &cp, Some("\"0x0000\"")).await,
        Err(StoreError::Conflict(_))
    ));
    let v2 = a.put(&la, &cp, Some(&v1)).await.unwrap();
    let got = b.get(&key).await.unwrap().unwrap();
    assert_eq!(got.checkpoint.offset, 20);
    assert_eq!(got.version, v2);
    let listed = b.list(&key.container, "tenantId=t/y=2026/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].offset, listed[0].length, listed[0].closed),
        (20, 12, false)
    );

    // Another holder's lease id cannot write.
    let fake = mde_relay::state::Lease {
        key: key.clone(),
        id: "00000000-0000-0000-0000-000000000000".into(),
        ttl,
    };
    assert!(matches!(
        b.put(&fake, &cp, Some(&v2)).await,
        Err(StoreError::Conflict(_))
    ));

    a.renew(&la).await.unwrap();
    a.release(&la).await.unwrap();
    let lb = b.acquire(&key, ttl).await.unwrap().expect("released lease");
    cp.closed = true;
    b.put(&lb, &cp, Some(&v2)).await.unwrap();
    assert!(
        b.list_open().await.unwrap().is_empty(),
        "closed: no longer watched"
    );
    b.release(&lb).await.unwrap();

    assert!(a.claim("sweep", Duration::from_secs(3600)).await.unwrap());
    assert!(!b.claim("sweep", Duration::from_secs(3600)).await.unwrap());
    assert!(b.claim("sweep", Duration::ZERO).await.unwrap());

    common::azurite()
        .blob_service()
        .unwrap()
        .blob_container_client(&container)
        .delete(None)
        .await
        .unwrap();
}

#[tokio::test]
async fn blob_source_properties_ranges_and_listings() {
    let env = relay::Env::new().await;
    let src = AzureSource::new(env.account.clone()).unwrap();
    let blob = relay::Env::blob_name("2026/01/01/07");
    env.create_append(&blob).await;
    env.append(&blob, b"0123456789").await;
    let key = BlobKey::new(&env.container, &blob);
    let p = src.properties(&key).await.unwrap().unwrap();
    assert_eq!(p.length, 10);
    assert_eq!(p.blob_type, BlobType::Append);
    assert!(p.incarnation.is_some(), "creation time reported");
    assert_eq!(&src.read(&key, 3..7).await.unwrap()[..], b"3456");
    env.append(&blob, b"abc").await;
    let p2 = src.properties(&key).await.unwrap().unwrap();
    assert_eq!(p2.length, 13);
    assert_ne!(p.etag, p2.etag);
    assert_eq!(
        p.incarnation, p2.incarnation,
        "appends keep the incarnation"
    );
    assert!(src
        .properties(&BlobKey::new(&env.container, "nope"))
        .await
        .unwrap()
        .is_none());

    let listed = src
        .list_blobs(
            &env.container,
            &format!("tenantId={}/", relay::TENANT),
            None,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, blob, "names with / and = survive");
    assert_eq!(listed[0].props.length, 13);
    assert_eq!(
        src.list_blobs(&env.container, "tenantId=", Some(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(src
        .list_blobs(&format!("missing-{}", relay::suffix()), "", None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        src.list_containers(&env.prefix).await.unwrap(),
        vec![env.container.clone()]
    );
    assert_eq!(
        src.key_for_url(&env.url(&blob)).unwrap(),
        key,
        "event URLs of this account resolve"
    );
}
