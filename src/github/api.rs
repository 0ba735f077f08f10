//! The few GitHub REST endpoints gitkit uses: list and add the user's SSH keys, and `/meta`
//! for a GitHub Enterprise server's SSH host keys. The base URL is a parameter.

use serde::Deserialize;

use crate::secret::Secret;

/// `https://api.github.com`.
pub const GITHUB_API: &str = "https://api.github.com";
const PER_PAGE: u32 = 100;
/// Pages followed at most: 100 pages of 100 keys is far past any real account.
const MAX_PAGES: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("GitHub rejected the token (401): it is invalid or expired")]
    Unauthorized,
    #[error("GitHub refused {action} ({status}): {why}")]
    Forbidden {
        action: &'static str,
        status: u16,
        why: String,
    },
    #[error(
        "GitHub says this key is already in use, but not by this account: it belongs to another account or is a deploy key"
    )]
    KeyInUseElsewhere,
    #[error("GitHub answered {status} to {action}: {message}")]
    Status {
        action: &'static str,
        status: u16,
        message: String,
    },
    #[error("could not reach {0}")]
    Transport(String, #[source] Box<ureq::Error>),
    #[error("GitHub's answer to {0} was not what its documentation describes")]
    Body(&'static str, #[source] Box<ureq::Error>),
    #[error("refusing {0}: the token would travel in clear text (plain HTTP is for loopback only)")]
    PlainHttp(String),
    #[error("refusing {0}: the API URL must start with https://")]
    BadUrl(String),
    #[error("not following a next-page link away from {base} with the token: {link}")]
    ForeignLink { base: String, link: String },
}

/// Checks an API base URL before any token goes to it: HTTPS, or plain HTTP to this machine
/// only (127.0.0.0/8, ::1, localhost), where a test or a local proxy listens.
pub fn check_base_url(url: &str) -> Result<(), ApiError> {
    let bad = || ApiError::BadUrl(url.to_string());
    let uri: ureq::http::Uri = url.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(ApiError::PlainHttp(url.to_string())),
        _ => Err(bad()),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A key as `GET /user/keys` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct UserKey {
    pub id: u64,
    pub key: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(default)]
    ssh_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

pub struct Client {
    base: String,
    token: Secret<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str, token: Secret<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(url)
            .header("User-Agent", concat!("gitkit/", env!("CARGO_PKG_VERSION")))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header("Authorization", &format!("Bearer {}", self.token.expose()))
    }

    /// Every key of the token's account, following the `Link` header page by page.
    pub fn list_keys(&self) -> Result<Vec<UserKey>, ApiError> {
        let mut keys = Vec::new();
        let mut url = Some(format!("{}/user/keys?per_page={PER_PAGE}", self.base));
        let mut pages = 0;
        while let Some(current) = url.take() {
            pages += 1;
            let mut response = self
                .get(&current)
                .call()
                .map_err(|e| ApiError::Transport(self.base.clone(), Box::new(e)))?;
            tracing::debug!(url = current, status = response.status().as_u16(), "GET");
            check(&mut response, "listing your SSH keys", &self.token)?;
            url = next_link(response.headers().get("link").and_then(|v| v.to_str().ok()));
            // The token goes wherever the link points: only under the API it was given to.
            if let Some(link) = url.as_ref().filter(|link| !same_origin(link, &self.base)) {
                return Err(ApiError::ForeignLink {
                    base: self.base.clone(),
                    link: link.clone(),
                });
            }
            let page: Vec<UserKey> = response
                .body_mut()
                .read_json()
                .map_err(|e| ApiError::Body("GET /user/keys", Box::new(e)))?;
            keys.extend(page);
            if pages >= MAX_PAGES {
                break;
            }
        }
        Ok(keys)
    }

    /// Adds `key` to the account.
    pub fn add_key(&self, title: &str, key: &str) -> Result<UserKey, ApiError> {
        let mut response = self
            .agent
            .post(&format!("{}/user/keys", self.base))
            .header("User-Agent", concat!("gitkit/", env!("CARGO_PKG_VERSION")))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header("Authorization", &format!("Bearer {}", self.token.expose()))
            .send_json(serde_json::json!({ "title": title, "key": key }))
            .map_err(|e| ApiError::Transport(self.base.clone(), Box::new(e)))?;
        tracing::debug!(
            url = format!("{}/user/keys", self.base),
            status = response.status().as_u16(),
            "POST"
        );
        if response.status().as_u16() == 422 {
            let body: ErrorBody = response.body_mut().read_json().unwrap_or(ErrorBody {
                message: String::new(),
                errors: Vec::new(),
            });
            let text = format!("{} {:?}", body.message, body.errors).to_lowercase();
            if text.contains("already in use") || text.contains("already exists") {
                return Err(ApiError::KeyInUseElsewhere);
            }
            return Err(ApiError::Status {
                action: "adding the key",
                status: 422,
                message: body.message,
            });
        }
        check(&mut response, "adding the key", &self.token)?;
        response
            .body_mut()
            .read_json()
            .map_err(|e| ApiError::Body("POST /user/keys", Box::new(e)))
    }

    /// The server's published SSH host keys (`GET /meta`).
    pub fn ssh_host_keys(&self) -> Result<Vec<String>, ApiError> {
        let mut response = self
            .get(&format!("{}/meta", self.base))
            .call()
            .map_err(|e| ApiError::Transport(self.base.clone(), Box::new(e)))?;
        tracing::debug!(
            url = format!("{}/meta", self.base),
            status = response.status().as_u16(),
            "GET"
        );
        check(&mut response, "reading /meta", &self.token)?;
        let meta: Meta = response
            .body_mut()
            .read_json()
            .map_err(|e| ApiError::Body("GET /meta", Box::new(e)))?;
        Ok(meta.ssh_keys)
    }
}

/// Turns an error status into an error the user can act on.
fn check(
    response: &mut ureq::http::Response<ureq::Body>,
    action: &'static str,
    token: &Secret<String>,
) -> Result<(), ApiError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let scopes = response
        .headers()
        .get("x-oauth-scopes")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Option<ErrorBody> = response.body_mut().read_json().ok();
    let message = body.map(|b| b.message).unwrap_or_default();
    match status {
        401 => Err(ApiError::Unauthorized),
        403 | 404 => Err(ApiError::Forbidden {
            action,
            status,
            why: missing_permission(token, scopes.as_deref()),
        }),
        _ => Err(ApiError::Status {
            action,
            status,
            message,
        }),
    }
}

/// Which permission the token lacks, by its kind.
fn missing_permission(token: &Secret<String>, scopes: Option<&str>) -> String {
    let token = token.expose();
    if token.starts_with("github_pat_") {
        "this fine-grained token needs the account permission \"Git SSH keys\" set to read and write".to_string()
    } else {
        let had = scopes
            .map(|s| format!(" (it has: {})", if s.is_empty() { "no scopes" } else { s }))
            .unwrap_or_default();
        format!("this token needs the `write:public_key` scope (or `admin:public_key`){had}")
    }
}

/// Whether `link` has the scheme, host and port of `base`.
fn same_origin(link: &str, base: &str) -> bool {
    let origin = |url: &str| {
        let uri: ureq::http::Uri = url.parse().ok()?;
        Some((
            uri.scheme_str()?.to_ascii_lowercase(),
            uri.authority()?.as_str().to_ascii_lowercase(),
        ))
    };
    origin(link).is_some_and(|o| Some(o) == origin(base))
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: Option<&str>) -> Option<String> {
    header?.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for good in [
            "https://api.github.com",
            "https://git.corp.example/api/v3",
            "http://127.0.0.1:8080/api/v3",
            "http://127.3.4.5/api/v3",
            "http://localhost:1234/api/v3",
            "http://LOCALHOST/api/v3",
            "http://[::1]:8080/api/v3",
        ] {
            assert!(check_base_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://api.github.com",
            "http://127.0.0.1.nip.io/api/v3",
            "http://localhost.evil.example/api/v3",
            "http://10.0.0.1/api/v3",
            "http://[::2]/api/v3",
            "http://user@evil.example/api/v3",
        ] {
            assert!(
                matches!(check_base_url(bad), Err(ApiError::PlainHttp(_))),
                "{bad}"
            );
        }
        for bad in ["ftp://github.example", "api.github.com", "", "https://"] {
            assert!(
                matches!(check_base_url(bad), Err(ApiError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn follows_the_next_link() {
        let header = "<https://api.github.com/user/keys?per_page=100&page=2>; rel=\"next\", \
                      <https://api.github.com/user/keys?per_page=100&page=3>; rel=\"last\"";
        assert_eq!(
            next_link(Some(header)).as_deref(),
            Some("https://api.github.com/user/keys?per_page=100&page=2")
        );
        assert_eq!(next_link(Some("<https://x/?page=1>; rel=\"prev\"")), None);
        let base = "https://api.github.com";
        assert!(same_origin("https://api.github.com/user/keys?page=2", base));
        assert!(!same_origin("http://api.github.com/user/keys?page=2", base));
        assert!(!same_origin(
            "https://api.github.com.evil.example/user/keys",
            base
        ));
        assert!(!same_origin(
            "https://evil.example/?https://api.github.com",
            base
        ));
        assert_eq!(next_link(None), None);
    }

    #[test]
    fn says_which_permission_is_missing() {
        let fine = missing_permission(&Secret::new("github_pat_abc".into()), None);
        assert!(fine.contains("Git SSH keys"));
        let classic = missing_permission(&Secret::new("ghp_abc".into()), Some("repo"));
        assert!(classic.contains("write:public_key") && classic.contains("repo"));
    }
}
