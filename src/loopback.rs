//! Which URLs may use plain `http://`: only those whose host is *literally* loopback — an IPv4
//! address in 127.0.0.0/8, `[::1]`, or the name `localhost` itself (RFC 6761 reserves it for
//! loopback). Names under `.localhost` and any other name are not trusted to be loopback: they
//! would be resolved through DNS, which may answer anything.

use url::{Host, Url};

/// True when `u`'s host is a literal loopback address or exactly `localhost`.
pub fn is_literal_loopback(u: &Url) -> bool {
    match u.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_literal_loopback() {
        for ok in [
            "http://127.0.0.1:10000/a",
            "http://127.8.9.10/",
            "http://[::1]:8080/",
            "http://localhost/",
            "http://LOCALHOST:1/",
        ] {
            assert!(is_literal_loopback(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://evil.localhost/",
            "http://localhost.example.com/",
            "http://10.0.0.1/",
            "http://acme.blob.core.windows.net/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(!is_literal_loopback(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
