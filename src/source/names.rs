//! Checks of the names an event hands the relay, before anything is read or written for them.
//! Event URLs come from whoever can write to the events queue, so a name is refused unless it is
//! one Azure itself could have: a container name by Azure's rules, a blob name without dot
//! segments, empty segments or control characters (after percent-decoding, where `..%2F` and
//! `%00` would otherwise slip through).

/// Why a container name is not one Azure accepts, if it is not: 3–63 characters of lower-case
/// letters, digits and hyphens, starting and ending with a letter or digit, no two hyphens in a
/// row.
pub fn container_problem(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Some("must be 3 to 63 characters long");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        return Some("may hold only lower-case letters, digits and hyphens");
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Some("must start and end with a letter or digit");
    }
    if name.contains("--") {
        return Some("must not hold two hyphens in a row");
    }
    None
}

/// Why a blob name is refused, if it is: empty or over 1,024 characters, a control character,
/// a backslash, an empty, `.` or `..` path segment.
pub fn blob_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.chars().count() > 1024 {
        return Some("must be 1 to 1,024 characters long");
    }
    if name.chars().any(|c| c.is_control()) {
        return Some("holds a control character");
    }
    if name.contains('\\') {
        return Some("holds a backslash");
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("holds an empty, `.` or `..` path segment");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_container_rules() {
        for ok in [
            "abc",
            "insights-logs-advancedhunting-deviceevents",
            "a1-b2",
            &"a".repeat(63),
        ] {
            assert_eq!(container_problem(ok), None, "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Insights",
            "a_b",
            "-ab",
            "ab-",
            "a--b",
            "abc../x",
            "abc\0",
            "abc.def",
        ] {
            assert!(container_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn blob_names() {
        assert_eq!(
            blob_problem("tenantId=t/y=2026/m=01/d=01/h=00/m=00/PT1H.json"),
            None
        );
        for bad in [
            "", "a/../b", "../x", "a/./b", "a//b", "/a", "a/", "a\0b", "a\u{1b}b", "a\\b",
        ] {
            assert!(blob_problem(bad).is_some(), "{bad:?}");
        }
    }
}
