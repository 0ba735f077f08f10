//! The CodeCommit password: a SigV4 signature over a `GIT` request, as `aws codecommit
//! credential-helper` computes it.
//!
//! Canonical request: `GIT\n/<path>\n\nhost:<host>\n\nhost\n`; string to sign:
//! `AWS4-HMAC-SHA256\n<YYYYMMDDTHHMMSS>\n<YYYYMMDD>/<region>/codecommit/aws4_request\n<sha256>`
//! (awscli puts the timestamp there without its `Z`); password: `<YYYYMMDDTHHMMSS>Z<signature>`.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::secret::Secret;

const SERVICE: &str = "codecommit";

/// What is signed: the host without its port, the repository path, the region and the second.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub host: &'a str,
    /// The path git sends (`v1/repos/NAME`), without its leading slash.
    pub path: &'a str,
    pub region: &'a str,
    pub time: SystemTime,
}

/// The Git password for `request`, signed with `secret_access_key`.
pub fn password(secret_access_key: &Secret<String>, request: &Request<'_>) -> Secret<String> {
    let time = crate::time::whole_second(request.time);
    let timestamp = crate::time::compact(time);
    let timestamp = timestamp.trim_end_matches('Z');
    let date = &timestamp[..8];
    let canonical_request = format!(
        "GIT\n{path}\n\nhost:{host}\n\nhost\n",
        path = url_path(request.path),
        host = request.host
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{date}/{region}/{SERVICE}/aws4_request\n{hash}",
        region = request.region,
        hash = hex::encode(Sha256::digest(canonical_request.as_bytes())),
    );
    let key = aws_sigv4::sign::v4::generate_signing_key(
        secret_access_key.expose(),
        time,
        request.region,
        SERVICE,
    );
    let signature = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    Secret::new(format!("{timestamp}Z{signature}"))
}

/// The path as Python's `urlsplit` sees it in `https://host/<path>`: awscli signs that, so a
/// `?` or `#` in git's path ends it.
fn url_path(path: &str) -> String {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    format!("/{}", &path[..end])
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Vectors computed with botocore's `SigV4Auth`, the code behind
    /// `aws codecommit credential-helper`.
    #[test]
    fn matches_botocore_vectors() {
        let secret = Secret::new(SECRET.to_string());
        let request = Request {
            host: "git-codecommit.us-east-1.amazonaws.com",
            path: "v1/repos/demo",
            region: "us-east-1",
            time: at(1_795_858_200) + Duration::from_millis(999),
        };
        assert_eq!(
            password(&secret, &request).expose(),
            "20261128T093000Z7c5c62763a1736d2d0bbaa8defa905461d36621aef60131886f79af739b7c056"
        );
        let request = Request {
            host: "git-codecommit.eu-west-1.amazonaws.com",
            path: "v1/repos/my repo",
            region: "eu-west-1",
            time: at(1_583_020_799),
        };
        assert_eq!(
            password(&secret, &request).expose(),
            "20200229T235959Zc987a17156e1368ae6a37c1a3ad9998983b78d3f4fbba17084bf1f0d4da89d10"
        );
    }

    #[test]
    fn path_stops_where_a_url_path_would() {
        assert_eq!(url_path("v1/repos/a"), "/v1/repos/a");
        assert_eq!(url_path("v1/repos/a?x=1"), "/v1/repos/a");
        assert_eq!(url_path("v1/repos/a#frag"), "/v1/repos/a");
        assert_eq!(url_path(""), "/");
    }
}
