//! Files setup writes: whole files it owns (written atomically, only when they differ) and
//! single lines it adds to the user's files (and takes out again on undo, byte for byte).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Whether `path` already holds `data` with `mode`.
pub fn same_content(path: &Path, data: &[u8], mode: u32) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    meta.permissions().mode() & 0o777 == mode && std::fs::read(path).is_ok_and(|d| d == data)
}

/// Writes beside, sets the mode, syncs, renames into place: a running copy of the file (the
/// binary, a hook) is never seen half written.
pub fn write(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let parent = path.parent().expect("a file has a folder");
    std::fs::create_dir_all(parent)?;
    let mut file = tempfile::Builder::new()
        .prefix(crate::fs::TEMPORARY_PREFIX)
        .tempfile_in(parent)?;
    std::io::Write::write_all(&mut file, data)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The line setup adds to `~/.bashrc`.
pub fn bashrc_line(completion: &Path) -> String {
    let path = crate::hooks::shell_word(&completion.to_string_lossy()).into_owned();
    format!("if [ -f {path} ]; then . {path}; fi  # gitkit completion (gitkit setup)")
}

/// Appends `line` to `path` unless a line equal to it is there. Returns whether it was added.
pub fn add_line(path: &Path, line: &str, dry_run: bool) -> std::io::Result<bool> {
    let current = read_or_empty(path)?;
    if current.lines().any(|l| l == line) {
        return Ok(false);
    }
    if !dry_run {
        let mut text = current;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        write_keeping_mode(path, text.as_bytes())?;
    }
    Ok(true)
}

/// Takes out every line equal to `line`. Returns whether there was one.
pub fn remove_line(path: &Path, line: &str) -> std::io::Result<bool> {
    let current = read_or_empty(path)?;
    let kept: Vec<&str> = current
        .split_inclusive('\n')
        .filter(|l| l.trim_end_matches('\n') != line)
        .collect();
    let text: String = kept.concat();
    if text == current {
        return Ok(false);
    }
    if text.is_empty() {
        // The file was setup's alone.
        std::fs::remove_file(path)?;
    } else {
        write_keeping_mode(path, text.as_bytes())?;
    }
    Ok(true)
}

/// The block `gitkit github-key` puts at the top of `~/.ssh/config`.
fn ssh_include_block(config: &Path) -> String {
    format!(
        "# Added by gitkit: GitHub over SSH.\nInclude \"{}\"\n\n",
        config.display()
    )
}

/// Puts the `Include` of gitkit's ssh config back at the top of `user_config`.
pub fn add_ssh_include(user_config: &Path, config: &Path, dry_run: bool) -> std::io::Result<bool> {
    let include = format!("Include \"{}\"", config.display());
    let current = read_or_empty(user_config)?;
    if current.lines().any(|l| l.trim() == include) {
        return Ok(false);
    }
    if !dry_run {
        let dir = user_config.parent().expect("a file has a folder");
        std::fs::create_dir_all(dir)?;
        let text = format!("{}{current}", ssh_include_block(config));
        crate::fs::write_atomically(user_config, text.as_bytes())?;
    }
    Ok(true)
}

/// Takes the block out again; an `Include` line written some other way is left alone.
pub fn remove_ssh_include(user_config: &Path, config: &Path) -> std::io::Result<bool> {
    let current = read_or_empty(user_config)?;
    let block = ssh_include_block(config);
    if !current.contains(&block) {
        return Ok(false);
    }
    let text = current.replacen(&block, "", 1);
    if text.is_empty() {
        std::fs::remove_file(user_config)?;
    } else {
        crate::fs::write_atomically(user_config, text.as_bytes())?;
    }
    Ok(true)
}

fn read_or_empty(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Rewrites a user's file atomically, keeping its mode (a new file gets 0644).
fn write_keeping_mode(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    write(path, data, mode)
}

/// Removes a file setup wrote; a missing one is fine.
pub fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_added_then_removed_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rc = dir.path().join(".bashrc");
        std::fs::write(&rc, "export A=1\nalias x=y").expect("write");
        let line = bashrc_line(Path::new("/g/completions/gitkit.bash"));
        assert!(add_line(&rc, &line, false).expect("add"));
        assert!(!add_line(&rc, &line, false).expect("add"), "once");
        let text = std::fs::read_to_string(&rc).expect("read");
        assert_eq!(text.matches(&line).count(), 1);
        assert!(remove_line(&rc, &line).expect("remove"));
        assert_eq!(
            std::fs::read_to_string(&rc).expect("read"),
            "export A=1\nalias x=y\n",
            "the user's lines stay (a missing last newline is added once)"
        );
    }

    #[test]
    fn ssh_include_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let user = dir.path().join(".ssh/config");
        let ours = dir.path().join("g/ssh/config");
        std::fs::create_dir_all(user.parent().expect("parent")).expect("mkdir");
        std::fs::write(&user, "Host mine\n").expect("write");
        assert!(add_ssh_include(&user, &ours, false).expect("add"));
        assert!(!add_ssh_include(&user, &ours, false).expect("add"));
        assert!(remove_ssh_include(&user, &ours).expect("remove"));
        assert_eq!(std::fs::read_to_string(&user).expect("read"), "Host mine\n");
    }
}
