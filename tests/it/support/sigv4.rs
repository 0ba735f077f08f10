//! CodeCommit's password check, written here from the AWS SigV4 documentation and independent
//! of gitkit's code, so that a test server can verify what gitkit sends.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The password CodeCommit expects for `timestamp` (`YYYYMMDDTHHMMSS`), host, path and region.
pub fn expected_password(
    secret: &str,
    timestamp: &str,
    host: &str,
    path: &str,
    region: &str,
) -> String {
    let date = &timestamp[..8];
    let canonical = format!("GIT\n{path}\n\nhost:{host}\n\nhost\n");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{date}/{region}/codecommit/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = hmac(format!("AWS4{secret}").as_bytes(), date);
    let key = hmac(&key, region);
    let key = hmac(&key, "codecommit");
    let key = hmac(&key, "aws4_request");
    format!("{timestamp}Z{}", hex::encode(hmac(&key, &string_to_sign)))
}
