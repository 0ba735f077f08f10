//! The binary as the store keeps it for new instances: under a key naming its version and
//! hash, so that a lifecycle script fetches exactly the bytes whose sha256 it was given.

use sha2::{Digest, Sha256};

/// Lower-case hex sha256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `bin/gitkit-VERSION-SHA256PREFIX`, relative to the store's root.
pub fn store_key(version: &str, sha256: &str) -> String {
    format!("bin/gitkit-{version}-{}", &sha256[..16.min(sha256.len())])
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_names_version_and_hash() {
        let sha = super::sha256_hex(b"abc");
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            super::store_key("0.1.0", &sha),
            "bin/gitkit-0.1.0-ba7816bf8f01cfea"
        );
    }
}
