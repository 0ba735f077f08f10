//! GitHub over SSH: a key that survives restarts, GitHub's host keys pinned, the key
//! registered once through the REST API.

pub mod api;
pub mod key;
pub mod ssh_config;

use std::path::{Path, PathBuf};

pub use api::{ApiError, Client, GITHUB_API};
pub use key::{Key, KeyError};
use ssh_config::SshHost;

/// Where gitkit keeps its SSH files under its home.
pub fn ssh_dir(gitkit_home: &Path) -> PathBuf {
    gitkit_home.join("ssh")
}

/// The SSH host of an API: `api.github.com` -> `github.com`, `https://HOST/api/v3` (GitHub
/// Enterprise Server) -> `HOST`, `api.TENANT.ghe.com` -> `TENANT.ghe.com`.
pub fn ssh_host_for(api_url: &str) -> Option<String> {
    let rest = api_url.split_once("://").map_or(api_url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                host
            } else {
                authority
            }
        });
    if host.is_empty() {
        return None;
    }
    Some(match host.strip_prefix("api.") {
        Some(rest) if rest == "github.com" || rest.ends_with(".ghe.com") => rest.to_string(),
        _ => host.to_string(),
    })
}

/// What `gitkit github-key` works with.
pub struct Plan {
    pub hosts: Vec<SshHost>,
    /// Host keys to pin: GitHub's published ones, or an Enterprise server's from `/meta`.
    pub host_keys: Vec<String>,
}

/// The default title of a key: the notebook instance's name where there is one, else the
/// host name.
pub fn default_title(resource_metadata: &Path, host: &str) -> String {
    let notebook = std::fs::read(resource_metadata)
        .ok()
        .and_then(|data| serde_json::from_slice::<serde_json::Value>(&data).ok())
        .and_then(|meta| meta.get("ResourceName")?.as_str().map(str::to_string));
    match notebook {
        Some(name) => format!("gitkit on SageMaker notebook {name}"),
        None => format!("gitkit on {host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_hosts_of_apis() {
        assert_eq!(
            ssh_host_for("https://api.github.com").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            ssh_host_for("https://git.corp.example/api/v3").as_deref(),
            Some("git.corp.example")
        );
        assert_eq!(
            ssh_host_for("https://api.acme.ghe.com").as_deref(),
            Some("acme.ghe.com")
        );
        assert_eq!(
            ssh_host_for("http://127.0.0.1:8080/api/v3").as_deref(),
            Some("127.0.0.1")
        );
    }

    #[test]
    fn title_names_the_notebook() {
        let dir = tempfile::tempdir().expect("temp dir");
        let meta = dir.path().join("resource-metadata.json");
        assert_eq!(default_title(&meta, "ip-10-0-0-1"), "gitkit on ip-10-0-0-1");
        std::fs::write(
            &meta,
            r#"{"ResourceArn":"arn:...","ResourceName":"churn-lab"}"#,
        )
        .expect("write");
        assert_eq!(
            default_title(&meta, "ip-10-0-0-1"),
            "gitkit on SageMaker notebook churn-lab"
        );
    }
}
