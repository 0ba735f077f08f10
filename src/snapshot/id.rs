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

/// A BLAKE3 hash: of a blob, a file's whole content, or a tree. 32 bytes in memory (a third of
/// its hex text, which matters at 100,000 files); 64 lowercase hex digits in the store, in the
/// caches and on screen. Reading one from text checks it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// The hash `text` spells, if it is one (64 lowercase hex digits).
    pub fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        (is_hash(text) && hex::decode_to_slice(text, &mut bytes).is_ok()).then_some(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<blake3::Hash> for Hash {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl std::str::FromStr for Hash {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        Self::parse(text).ok_or_else(|| IdError::Hash(shown(text)))
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = [0u8; 64];
        hex::encode_to_slice(self.0, &mut text).expect("64 digits for 32 bytes");
        f.write_str(std::str::from_utf8(&text).expect("hex is ASCII"))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl PartialEq<str> for Hash {
    fn eq(&self, text: &str) -> bool {
        Self::parse(text) == Some(*self)
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Hash;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a content hash (64 lowercase hex digits)")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Hash, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
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
