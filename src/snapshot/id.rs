//! The names a store holds, checked for what they are before any of them becomes a key, a
//! path or a length: content hashes and pack ids are 64 lowercase hex digits, snapshot ids and
//! workspace names are one safe key segment.

/// Hex digits in a BLAKE3 hash: blob hashes, file hashes and pack ids.
const HASH_LEN: usize = 64;
/// Longest snapshot id or workspace name accepted from a store or a command line.
const NAME_MAX: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("`{0}` is not a content hash (64 lowercase hex digits)")]
    Hash(String),
    #[error("`{0}` is not a snapshot id")]
    Snapshot(String),
    #[error("`{0}` is not a workspace name (letters, digits, `-`, `_` and `.`)")]
    Workspace(String),
}

/// A blob hash, file hash or pack id: exactly 64 lowercase hex digits.
pub fn is_hash(text: &str) -> bool {
    text.len() == HASH_LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn check_hash(text: &str) -> Result<(), IdError> {
    is_hash(text)
        .then_some(())
        .ok_or_else(|| IdError::Hash(shown(text)))
}

/// A snapshot id as gitkit writes them (`20261128T093000.123Z-1a2b3c`): one key segment of
/// letters, digits, `.`, `-` and `_`, starting with a digit.
pub fn check_snapshot(text: &str) -> Result<(), IdError> {
    let ok = text.len() <= NAME_MAX
        && text.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    ok.then_some(())
        .ok_or_else(|| IdError::Snapshot(shown(text)))
}

/// A workspace name: one key segment of letters, digits, `-`, `_` and `.`, not starting or
/// ending with `.` or `-` (so never `.` or `..`).
pub fn check_workspace(text: &str) -> Result<(), IdError> {
    let ok = !text.is_empty()
        && text.len() <= NAME_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !text.starts_with(['.', '-'])
        && !text.ends_with(['.', '-']);
    ok.then_some(())
        .ok_or_else(|| IdError::Workspace(shown(text)))
}

/// Enough of an untrusted name to recognise it, with control characters escaped.
fn shown(text: &str) -> String {
    let short: String = text.chars().take(80).collect();
    short.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_64_lowercase_hex_digits() {
        let good = "a".repeat(64);
        assert!(is_hash(&good));
        for bad in [
            "",
            "ab",
            "../../etc/hostname",
            &"A".repeat(64),
            &"a".repeat(65),
        ] {
            assert!(!is_hash(bad), "{bad:?}");
        }
        assert!(
            !is_hash("é".repeat(32).as_str()),
            "not on a character boundary"
        );
    }

    #[test]
    fn snapshot_ids_and_workspaces_are_one_safe_segment() {
        assert_eq!(check_snapshot("20261128T093000.123Z-1a2b3c"), Ok(()));
        for bad in ["", "..", "../x", "latest/..", "a/b", "2026\n", "x2026"] {
            assert!(check_snapshot(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_workspace("churn-model_v2.1"), Ok(()));
        for bad in ["", ".", "..", "../..", "a/b", ".hidden", "x\u{1b}[31m"] {
            assert!(check_workspace(bad).is_err(), "{bad:?}");
        }
    }
}
