//! Which hosts gitkit signs for, and the AWS region each one is in.
//!
//! Only the exact CodeCommit host names are accepted, label by label, so that a look-alike such
//! as `git-codecommit.us-east-1.amazonaws.com.evil.example` never receives a signature.

/// A host git asked about, split into the name that is signed and its optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort<'a> {
    pub name: &'a str,
    pub port: Option<&'a str>,
}

impl<'a> HostPort<'a> {
    /// Splits git's `host` value (`name` or `name:port`). `None` when the port is not a number.
    pub fn parse(host: &'a str) -> Option<Self> {
        match host.rsplit_once(':') {
            Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                Some(Self {
                    name,
                    port: Some(port),
                })
            }
            Some(_) => None,
            None => Some(Self {
                name: host,
                port: None,
            }),
        }
    }
}

/// The region of an AWS CodeCommit Git endpoint, or `None` when `name` is not one.
///
/// Accepted, case-insensitively and nothing else:
/// `git-codecommit[-fips].<region>.amazonaws.com[.cn]` and
/// `vpce-<id>.git-codecommit[-fips].<region>.vpce.amazonaws.com[.cn]`.
pub fn codecommit_region(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let labels = match labels.as_slice() {
        [rest @ .., "amazonaws", "com", "cn"] | [rest @ .., "amazonaws", "com"] => rest,
        _ => return None,
    };
    let region = match labels {
        [service, region] if is_service(service) => region,
        [endpoint, service, region, "vpce"] if is_endpoint(endpoint) && is_service(service) => {
            region
        }
        _ => return None,
    };
    is_region(region).then(|| region.to_string())
}

fn is_service(label: &str) -> bool {
    matches!(label, "git-codecommit" | "git-codecommit-fips")
}

/// `vpce-0123456789abcdef0-abcdefgh`, or a zonal `...-us-east-1a`.
fn is_endpoint(label: &str) -> bool {
    label
        .strip_prefix("vpce-")
        .is_some_and(|id| !id.is_empty() && is_dns_label(id))
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-central-2`: letters, then dash-separated
/// parts, the last a number.
fn is_region(label: &str) -> bool {
    let mut parts = label.split('-');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return false;
    };
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

fn is_dns_label(label: &str) -> bool {
    label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Hosts the user allowed with `gitkit.codecommit.allowHost`, for private DNS names.
///
/// An entry is `HOST` or `HOST:PORT`; one with a port matches only that port, one without
/// matches any. Such hosts are signed for over HTTPS; an entry written `http://HOST:PORT` also
/// allows plain HTTP, for a local proxy or a test rig, and only where it says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<AllowedHost>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    plain_http: bool,
}

impl AllowedHosts {
    pub fn new(entries: impl IntoIterator<Item = String>) -> Self {
        let entries = entries.into_iter().filter_map(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            let (host, plain_http) = match entry.strip_prefix("http://") {
                Some(host) => (host, true),
                None => (entry.strip_prefix("https://").unwrap_or(&entry), false),
            };
            let host = host.trim_end_matches('/');
            (!host.is_empty()).then(|| AllowedHost {
                host: host.to_string(),
                plain_http,
            })
        });
        Self(entries.collect())
    }

    /// Whether `host` may be signed for over HTTPS.
    pub fn allows(&self, host: &HostPort<'_>) -> bool {
        self.0.iter().any(|entry| entry.matches(host))
    }

    /// Whether `host` may be signed for over plain HTTP.
    pub fn allows_plain_http(&self, host: &HostPort<'_>) -> bool {
        self.0
            .iter()
            .any(|entry| entry.plain_http && entry.matches(host))
    }
}

impl AllowedHost {
    fn matches(&self, host: &HostPort<'_>) -> bool {
        let Some(allowed) = HostPort::parse(&self.host) else {
            return false;
        };
        allowed.name.eq_ignore_ascii_case(host.name)
            && (allowed.port.is_none() || allowed.port == host.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_codecommit_endpoint_shape() {
        let cases = [
            ("git-codecommit.us-east-1.amazonaws.com", "us-east-1"),
            (
                "git-codecommit-fips.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
            ("git-codecommit.cn-north-1.amazonaws.com.cn", "cn-north-1"),
            (
                "git-codecommit-fips.cn-northwest-1.amazonaws.com.cn",
                "cn-northwest-1",
            ),
            (
                "vpce-0123456789abcdef0-abcdefgh.git-codecommit.eu-west-1.vpce.amazonaws.com",
                "eu-west-1",
            ),
            (
                "vpce-0a1b-us-east-1a.git-codecommit-fips.us-east-1.vpce.amazonaws.com",
                "us-east-1",
            ),
            (
                "GIT-CODECOMMIT.AP-SOUTHEAST-2.AMAZONAWS.COM",
                "ap-southeast-2",
            ),
        ];
        for (host, region) in cases {
            assert_eq!(codecommit_region(host).as_deref(), Some(region), "{host}");
        }
    }

    #[test]
    fn refuses_look_alike_hosts() {
        let cases = [
            "git-codecommit.us-east-1.amazonaws.com.evil.example",
            "evil.example.git-codecommit.us-east-1.amazonaws.com",
            "git-codecommit.us-east-1.amazonaws.com.",
            "xgit-codecommit.us-east-1.amazonaws.com",
            "git-codecommit.us-east-1.amazonaws.co",
            "git-codecommit.us-east-1.notamazonaws.com",
            "git-codecommit.amazonaws.com",
            "git-codecommit..amazonaws.com",
            "git-codecommit.us_east-1.amazonaws.com",
            "git-codecommit.useast.amazonaws.com",
            "git-codecommit.us-east-1.vpce.amazonaws.com",
            "vpce-.git-codecommit.us-east-1.vpce.amazonaws.com",
            "vpce-abc.git-codecommit.us-east-1.amazonaws.com",
            "a.vpce-abc.git-codecommit.us-east-1.vpce.amazonaws.com",
            "codecommit.us-east-1.amazonaws.com",
            "github.com",
            "",
        ];
        for host in cases {
            assert_eq!(codecommit_region(host), None, "{host}");
        }
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(
            HostPort::parse("example.com:8443"),
            Some(HostPort {
                name: "example.com",
                port: Some("8443")
            })
        );
        assert_eq!(
            HostPort::parse("example.com"),
            Some(HostPort {
                name: "example.com",
                port: None
            })
        );
        assert_eq!(HostPort::parse("example.com:x"), None);
        assert_eq!(HostPort::parse("example.com:"), None);
    }

    #[test]
    fn allowed_hosts_match_whole_names_and_ports() {
        let allowed = AllowedHosts::new(["git.corp.internal".into(), "127.0.0.1:8080".into()]);
        let host = |h| HostPort::parse(h).expect("valid");
        assert!(allowed.allows(&host("git.corp.internal")));
        assert!(allowed.allows(&host("GIT.corp.internal:443")));
        assert!(allowed.allows(&host("127.0.0.1:8080")));
        assert!(!allowed.allows(&host("127.0.0.1:8081")));
        assert!(!allowed.allows(&host("127.0.0.1")));
        assert!(!allowed.allows(&host("git.corp.internal.evil.example")));
        assert!(!allowed.allows(&host("evil.git.corp.internal")));
        assert!(!allowed.allows_plain_http(&host("127.0.0.1:8080")));
        let plain = AllowedHosts::new(["http://127.0.0.1:8080".into()]);
        assert!(plain.allows_plain_http(&host("127.0.0.1:8080")));
        assert!(plain.allows(&host("127.0.0.1:8080")));
    }
}
