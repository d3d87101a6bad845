//! The connection module against Azurite: an account SAS signed with the account key is
//! accepted by the blob and queue services through the official SDK clients.

mod common;

use azure_core::http::RequestContent;
use azure_storage_queue::models::QueueMessage;

#[tokio::test]
async fn account_sas_works_for_blobs_and_queues() {
    let account = common::azurite();
    let blobs = account.blob_service().unwrap();
    let name = common::unique("conn");
    let container = blobs.blob_container_client(&name);
    container.create(None).await.expect("create container");
    let blob = container.blob_client("dir/a=1/PT1H.json");
    blob.upload(RequestContent::from(b"hello\r\n".to_vec()), None)
        .await
        .expect("upload");
    assert!(blob.exists().await.unwrap());
    let body = blob
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(&body[..], b"hello\r\n");
    container.delete(None).await.unwrap();

    let queues = account.queue_service().unwrap();
    let q = queues.queue_client(&name).unwrap();
    q.create(None).await.expect("create queue");
    let msg = QueueMessage {
        message_text: Some("aGVsbG8=".into()),
    };
    q.send_message(msg.try_into().unwrap(), None)
        .await
        .expect("send message");
    q.delete(None).await.unwrap();
    // The SAS covers one service and no more than the relay does there: listing queues (which
    // the relay never does) is refused.
    let mut pager = queues.list_queues(None).unwrap();
    use futures::TryStreamExt;
    let e = pager
        .try_next()
        .await
        .expect_err("listing queues is outside the SAS");
    assert_eq!(e.http_status().map(u16::from), Some(403), "{e}");
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=d3Jvbmc=;BlobEndpoint={};QueueEndpoint={}",
        common::blob_endpoint(),
        common::queue_endpoint()
    );
    common::azurite();
    let account = mde_relay::azure::StorageAccount::from_connection_string("X", &cs).unwrap();
    let c = account
        .blob_service()
        .unwrap()
        .blob_container_client(&common::unique("wrongkey"));
    assert!(c.create(None).await.is_err());
}
