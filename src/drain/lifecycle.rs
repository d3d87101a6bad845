//! When a blob is finished (closed) and when its checkpoint no longer applies (restart).

use crate::source::{BlobKey, BlobProps, BlobType};
use crate::state::Checkpoint;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// True when `key` will not grow any more: it is not an append blob, or its hour ended and it
/// was last written more than `grace` ago. Only then is a final unterminated line a row.
pub fn is_closed(key: &BlobKey, props: &BlobProps, now: DateTime<Utc>, grace: Duration) -> bool {
    if matches!(props.blob_type, BlobType::Block | BlobType::Page) {
        return true;
    }
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let quiet = now.signed_duration_since(props.last_modified) >= grace;
    let hour_over = key
        .hour()
        .is_none_or(|h| now >= h + chrono::Duration::hours(1) + grace);
    quiet && hour_over
}

/// Why a stored checkpoint no longer applies to the blob, if it does not.
pub fn restart_reason(cp: &Checkpoint, props: &BlobProps) -> Option<String> {
    if props.length < cp.offset || props.length < cp.length {
        return Some(format!(
            "blob shrank from {} to {} bytes",
            cp.length.max(cp.offset),
            props.length
        ));
    }
    if let (Some(was), Some(is)) = (&cp.incarnation, &props.incarnation) {
        if was != is {
            return Some(format!("blob was re-created ({was} -> {is})"));
        }
    }
    if cp.blob_type != BlobType::Unknown && props.blob_type != cp.blob_type {
        return Some(format!(
            "blob type changed from {:?} to {:?}",
            cp.blob_type, props.blob_type
        ));
    }
    // Append blobs change ETag on every append; other blobs only when rewritten.
    if props.blob_type != BlobType::Append && !cp.etag.is_empty() && cp.etag != props.etag {
        return Some("blob was rewritten (ETag changed)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn props(len: u64, modified: DateTime<Utc>) -> BlobProps {
        BlobProps {
            length: len,
            etag: "\"e\"".into(),
            last_modified: modified,
            incarnation: Some("c1".into()),
            blob_type: BlobType::Append,
        }
    }

    #[test]
    fn closed_only_after_the_hour_and_a_quiet_grace_period() {
        let k = BlobKey::new("c", "tenantId=t/y=2026/m=11/d=01/h=10/m=00/PT1H.json");
        let g = Duration::from_secs(600);
        let t = |h, m| Utc.with_ymd_and_hms(2026, 11, 1, h, m, 0).unwrap();
        // Hour 10 ends at 11:00; closed from 11:10 if quiet for 10 minutes.
        assert!(!is_closed(&k, &props(5, t(10, 30)), t(11, 5), g));
        assert!(is_closed(&k, &props(5, t(10, 30)), t(11, 10), g));
        assert!(
            !is_closed(&k, &props(5, t(11, 55)), t(12, 0), g),
            "still growing"
        );
        let mut block = props(5, t(11, 59));
        block.blob_type = BlobType::Block;
        assert!(is_closed(&k, &block, t(12, 0), g));
    }

    #[test]
    fn restart_on_shrink_recreate_and_rewrite() {
        let k = BlobKey::new("c", "b");
        let now = Utc::now();
        let mut cp = Checkpoint::new(&k, now);
        cp.offset = 10;
        cp.length = 12;
        cp.incarnation = Some("c1".into());
        cp.blob_type = BlobType::Append;
        cp.etag = "\"old\"".into();
        assert!(
            restart_reason(&cp, &props(12, now)).is_none(),
            "ETag change on append"
        );
        assert!(restart_reason(&cp, &props(11, now))
            .unwrap()
            .contains("shrank"));
        let mut p = props(50, now);
        p.incarnation = Some("c2".into());
        assert!(restart_reason(&cp, &p).unwrap().contains("re-created"));
        cp.blob_type = BlobType::Block;
        let mut p = props(50, now);
        p.blob_type = BlobType::Block;
        assert!(restart_reason(&cp, &p).unwrap().contains("rewritten"));
    }
}
