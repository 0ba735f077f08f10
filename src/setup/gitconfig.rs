//! The git side of setup: the gitkit-owned config file that `~/.gitconfig` includes, and the
//! credential helper chain git really builds for a CodeCommit URL.

use std::path::Path;

use crate::git::config::Entry;
use crate::hooks::shell_word;

/// Every CodeCommit Git endpoint shape. In git's URL matching (2.27 and later) `*` matches one
/// host label, so each shape is written out.
pub const CODECOMMIT_URLS: &[&str] = &[
    "https://git-codecommit.*.amazonaws.com",
    "https://git-codecommit-fips.*.amazonaws.com",
    "https://git-codecommit.*.amazonaws.com.cn",
    "https://git-codecommit-fips.*.amazonaws.com.cn",
    "https://*.git-codecommit.*.vpce.amazonaws.com",
    "https://*.git-codecommit-fips.*.vpce.amazonaws.com",
    "https://*.git-codecommit.*.vpce.amazonaws.com.cn",
    "https://*.git-codecommit-fips.*.vpce.amazonaws.com.cn",
];

/// What goes into the gitkit-owned git config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeFile<'a> {
    /// The gitkit binary the helper runs (the copy under GITKIT_HOME).
    pub gitkit: &'a Path,
    pub store: Option<&'a str>,
    /// `init.templateDir`, unless the user has one of their own.
    pub template_dir: Option<&'a Path>,
}

/// The helper as git runs it: through the shell, so the path is quoted when it must be.
pub fn helper_command(gitkit: &Path) -> String {
    format!("{} credential", shell_word(&gitkit.to_string_lossy()))
}

impl IncludeFile<'_> {
    pub fn text(&self) -> String {
        let mut text = String::from(
            "# Written by `gitkit setup`, which rewrites it; `gitkit setup --undo` removes it.\n\
             # For CodeCommit only: forget the helpers configured so far, then ask gitkit.\n",
        );
        let helper = config_value(&helper_command(self.gitkit));
        for url in CODECOMMIT_URLS {
            text.push_str(&format!(
                "[credential \"{url}\"]\n\thelper =\n\thelper = {helper}\n\tuseHttpPath = true\n"
            ));
        }
        if let Some(store) = self.store {
            text.push_str(&format!("[gitkit]\n\tstore = {}\n", config_value(store)));
        }
        if let Some(dir) = self.template_dir {
            text.push_str(&format!(
                "[init]\n\ttemplateDir = {}\n",
                config_value(&dir.to_string_lossy())
            ));
        }
        text
    }
}

/// A value in git's config-file syntax: always quoted, `\` and `"` escaped.
fn config_value(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', r"\\").replace('"', "\\\""))
}

/// A helper in the chain, and the file that configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub command: String,
    pub origin: String,
}

/// The helpers git runs for `url`, in order, as git builds the list: every `credential.helper`
/// whose URL matches, in config order, an empty value forgetting those before it.
pub fn helper_chain(entries: &[Entry], url: &str) -> Vec<Helper> {
    let mut chain = Vec::new();
    for entry in entries {
        let Some(rest) = entry.key.strip_prefix("credential.") else {
            continue;
        };
        let Some(scope) = rest.strip_suffix("helper") else {
            continue;
        };
        let applies = match scope.strip_suffix('.') {
            None if scope.is_empty() => true,
            Some(pattern) => url_matches(pattern, url),
            None => false,
        };
        if !applies {
            continue;
        }
        if entry.value.is_empty() {
            chain.clear();
        } else {
            chain.push(Helper {
                command: entry.value.clone(),
                origin: entry.origin.clone(),
            });
        }
    }
    chain
}

/// Git's URL matching for config: same scheme, the same number of host labels with `*`
/// matching any one label, the same port, and the pattern's path a prefix of the URL's at a
/// `/`.
pub fn url_matches(pattern: &str, url: &str) -> bool {
    let (Some(p), Some(u)) = (split_url(pattern), split_url(url)) else {
        return false;
    };
    if !p.scheme.eq_ignore_ascii_case(u.scheme) || p.port != u.port {
        return false;
    }
    if p.user.is_some() && p.user != u.user {
        return false;
    }
    let p_labels: Vec<&str> = p.host.split('.').collect();
    let u_labels: Vec<&str> = u.host.split('.').collect();
    if p_labels.len() != u_labels.len()
        || !p_labels
            .iter()
            .zip(&u_labels)
            .all(|(p, u)| *p == "*" || p.eq_ignore_ascii_case(u))
    {
        return false;
    }
    let p_path = p.path.trim_end_matches('/');
    p_path.is_empty()
        || u.path == p_path
        || u.path
            .strip_prefix(p_path)
            .is_some_and(|rest| rest.starts_with('/'))
}

struct Url<'a> {
    scheme: &'a str,
    user: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
    path: &'a str,
}

fn split_url(url: &str) -> Option<Url<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    };
    let default_port = match scheme {
        "https" => Some("443"),
        "http" => Some("80"),
        _ => None,
    };
    let port = port.filter(|p| Some(*p) != default_port);
    Some(Url {
        scheme,
        user,
        host,
        port,
        path,
    })
}

/// A helper that keeps passwords: `cache` or `store` (git's own), by any spelling git accepts.
pub fn keeps_passwords(command: &str) -> bool {
    let first = command.split_whitespace().next().unwrap_or("");
    let name = first.rsplit('/').next().unwrap_or(first);
    matches!(
        name,
        "cache" | "store" | "git-credential-cache" | "git-credential-store"
    )
}

/// `aws codecommit credential-helper`, as AWS's instructions set it.
pub fn is_aws_helper(command: &str) -> bool {
    command.contains("codecommit") && command.contains("credential-helper")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codecommit_shape_is_matched_and_look_alikes_are_not() {
        let matched = |url: &str| CODECOMMIT_URLS.iter().any(|p| url_matches(p, url));
        for url in [
            "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/r",
            "https://git-codecommit-fips.us-gov-west-1.amazonaws.com/v1/repos/r",
            "https://git-codecommit.cn-north-1.amazonaws.com.cn/v1/repos/r",
            "https://vpce-0b7d2939e-ku8f3ry0.git-codecommit.us-east-2.vpce.amazonaws.com/v1/repos/r",
            "https://vpce-1-2-us-east-2a.git-codecommit-fips.us-east-2.vpce.amazonaws.com/v1/repos/r",
        ] {
            assert!(matched(url), "{url}");
        }
        for url in [
            "https://git-codecommit.us-east-1.amazonaws.com.evil.example/v1/repos/r",
            "https://github.com/owner/repo",
            "http://git-codecommit.us-east-1.amazonaws.com/v1/repos/r",
            "https://git-codecommit.us-east-1.amazonaws.com:8443/v1/repos/r",
        ] {
            assert!(!matched(url), "{url}");
        }
        assert!(url_matches(
            "https://example.com/a",
            "https://example.com/a/b"
        ));
        assert!(!url_matches(
            "https://example.com/a",
            "https://example.com/ab"
        ));
    }

    #[test]
    fn the_chain_resets_at_an_empty_helper_and_keeps_order() {
        let entry = |key: &str, value: &str| Entry {
            origin: "file:x".into(),
            key: key.into(),
            value: value.into(),
        };
        let entries = vec![
            entry("credential.helper", "!aws codecommit credential-helper $@"),
            entry("credential.https://github.com.helper", "gh"),
            entry(
                "credential.https://git-codecommit.*.amazonaws.com.helper",
                "",
            ),
            entry(
                "credential.https://git-codecommit.*.amazonaws.com.helper",
                "/g/gitkit credential",
            ),
            entry("credential.helper", "cache"),
        ];
        let names = |url| {
            helper_chain(&entries, url)
                .into_iter()
                .map(|h| h.command)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/r"),
            ["/g/gitkit credential", "cache"]
        );
        assert_eq!(
            names("https://github.com/o/r"),
            ["!aws codecommit credential-helper $@", "gh", "cache"]
        );
        assert!(keeps_passwords("cache --timeout=900"));
        assert!(keeps_passwords("store --file ~/.creds"));
        assert!(!keeps_passwords("/g/gitkit credential"));
        assert!(is_aws_helper("!aws codecommit credential-helper $@"));
    }

    #[test]
    fn include_file_quotes_what_it_must() {
        let text = IncludeFile {
            gitkit: Path::new("/home/me/My Stuff/gitkit"),
            store: Some("s3://b/p"),
            template_dir: Some(Path::new("/t")),
        }
        .text();
        assert!(
            text.contains("\thelper = \"'/home/me/My Stuff/gitkit' credential\"\n"),
            "{text}"
        );
        assert!(text.contains("[gitkit]\n\tstore = \"s3://b/p\"\n"));
        assert!(text.contains("[init]\n\ttemplateDir = \"/t\"\n"));
        assert_eq!(text.matches("\thelper =\n").count(), CODECOMMIT_URLS.len());
    }
}
