//! OpenSSH set-up for GitHub: a gitkit-owned config file (key, pinned host keys) that the
//! user's `~/.ssh/config` includes, and a known_hosts file with GitHub's published keys.

use std::path::{Path, PathBuf};

/// GitHub's SSH host keys as published at
/// <https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints>
/// (the RSA key is the one of March 2023).
pub const GITHUB_HOST_KEYS: &[&str] = &[
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
];

#[derive(Debug, thiserror::Error)]
#[error("could not write {0}")]
pub struct WriteError(PathBuf, #[source] std::io::Error);

/// One SSH host gitkit sets up; the host keys pinned for it are given to [`write`] beside it.
#[derive(Debug, Clone)]
pub struct SshHost {
    pub name: String,
    /// `ssh.github.com` answers on 443 where port 22 is blocked.
    pub port: Option<u16>,
}

/// What `write` changed.
#[derive(Debug, Default)]
pub struct Written {
    pub changed: Vec<PathBuf>,
}

/// The hosts for github.com: the usual one, and port 443 for networks that block 22.
pub fn github_hosts() -> Vec<SshHost> {
    vec![
        SshHost {
            name: "github.com".into(),
            port: None,
        },
        SshHost {
            name: "ssh.github.com".into(),
            port: Some(443),
        },
    ]
}

/// gitkit's own ssh config: for each host, this key only, and these host keys only.
pub fn config_text(hosts: &[SshHost], key: &Path, known_hosts: &Path) -> String {
    let mut text =
        String::from("# Written by gitkit (`gitkit github-key`); it is rewritten, do not edit.\n");
    for host in hosts {
        text.push_str(&format!("\nHost {}\n", host.name));
        if let Some(port) = host.port {
            text.push_str(&format!("  Port {port}\n"));
        }
        text.push_str(&format!(
            "  IdentityFile \"{}\"\n  IdentitiesOnly yes\n  UserKnownHostsFile \"{}\"\n  \
             StrictHostKeyChecking yes\n  HostKeyAlias {}\n",
            key.display(),
            known_hosts.display(),
            host.name
        ));
    }
    text
}

/// known_hosts lines pinning `keys` for every host.
pub fn known_hosts_text(hosts: &[SshHost], keys: &[String]) -> String {
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    keys.iter()
        .map(|key| format!("{} {key}\n", names.join(",")))
        .collect()
}

/// Writes gitkit's config and known_hosts under `dir`, and makes `user_config` include the
/// config, at its top, once. The user's own lines stay as they are.
pub fn write(
    dir: &Path,
    user_config: &Path,
    hosts: &[SshHost],
    key: &Path,
    host_keys: &[String],
) -> Result<Written, WriteError> {
    let mut written = Written::default();
    let config = dir.join("config");
    let known_hosts = dir.join("known_hosts");
    replace_if_different(
        &known_hosts,
        &known_hosts_text(hosts, host_keys),
        &mut written,
    )?;
    replace_if_different(
        &config,
        &config_text(hosts, key, &known_hosts),
        &mut written,
    )?;

    let include = format!("Include \"{}\"", config.display());
    // A config kept elsewhere and linked in (dotfiles) is edited where it is: replacing the
    // link with a file would cut it off from its source.
    let user_config = &follow_links(user_config);
    let current = std::fs::read_to_string(user_config).unwrap_or_default();
    if !current.lines().any(|line| line.trim() == include) {
        let text = format!("# Added by gitkit: GitHub over SSH.\n{include}\n\n{current}");
        let ssh_dir = user_config.parent().expect("a config file has a folder");
        std::fs::create_dir_all(ssh_dir).map_err(|e| WriteError(ssh_dir.to_path_buf(), e))?;
        crate::fs::write_atomically(user_config, text.as_bytes())
            .map_err(|e| WriteError(user_config.to_path_buf(), e))?;
        written.changed.push(user_config.to_path_buf());
    }
    Ok(written)
}

/// The file `path` names once symbolic links are followed (40 at most, as Linux does); for a
/// dangling link, where its target would be.
fn follow_links(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        // A relative target is relative to the link's folder; an absolute one replaces it.
        path = path.parent().unwrap_or(Path::new("/")).join(target);
    }
    path
}

fn replace_if_different(path: &Path, text: &str, written: &mut Written) -> Result<(), WriteError> {
    if std::fs::read_to_string(path).is_ok_and(|current| current == text) {
        return Ok(());
    }
    crate::fs::write_atomically(path, text.as_bytes())
        .map_err(|e| WriteError(path.to_path_buf(), e))?;
    written.changed.push(path.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_keys_are_the_published_ones() {
        let fingerprints: Vec<String> = GITHUB_HOST_KEYS
            .iter()
            .map(|line| {
                ssh_key::PublicKey::from_openssh(line)
                    .expect("valid key")
                    .fingerprint(ssh_key::HashAlg::Sha256)
                    .to_string()
            })
            .collect();
        assert_eq!(
            fingerprints,
            [
                "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
                "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
                "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
            ]
        );
    }

    #[test]
    fn links_are_followed_to_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("dotfiles/ssh_config");
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join(".ssh")).expect("mkdir");
        let link = dir.path().join(".ssh/config");
        std::os::unix::fs::symlink("../dotfiles/ssh_config", &link).expect("symlink");
        // Dangling for now: the target is still where the link points.
        assert_eq!(
            follow_links(&link),
            dir.path().join(".ssh/../dotfiles/ssh_config")
        );
        let second = dir.path().join("second");
        std::os::unix::fs::symlink(&link, &second).expect("symlink");
        assert_eq!(
            follow_links(&second),
            dir.path().join(".ssh/../dotfiles/ssh_config")
        );
        let plain = dir.path().join("plain");
        assert_eq!(follow_links(&plain), plain);
    }

    #[test]
    fn include_is_added_once_and_the_user_config_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let user = dir.path().join(".ssh/config");
        std::fs::create_dir_all(user.parent().expect("parent")).expect("mkdir");
        std::fs::write(&user, "Host mine\n  User me\n").expect("write");
        let ours = dir.path().join("gitkit-ssh");
        let keys: Vec<String> = GITHUB_HOST_KEYS.iter().map(|k| k.to_string()).collect();
        let key = ours.join("id_ed25519");
        let first = write(&ours, &user, &github_hosts(), &key, &keys).expect("write");
        assert_eq!(first.changed.len(), 3);
        let again = write(&ours, &user, &github_hosts(), &key, &keys).expect("write");
        assert!(again.changed.is_empty(), "{:?}", again.changed);
        let text = std::fs::read_to_string(&user).expect("read");
        assert!(text.starts_with("# Added by gitkit"));
        assert!(text.ends_with("Host mine\n  User me\n"));
        assert_eq!(text.matches("Include").count(), 1);
    }
}
