//! Looking into a snapshot without restoring all of it: the paths a user names (`ls PATH`,
//! `restore --path PATH`), the part of a manifest they match, and what changed between two.
//!
//! Everything here works on the flat, checked [`Manifest`] that [`super::find`] returns,
//! whatever the stored format.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;

use serde::Serialize;

use super::manifest::Manifest;
/// What a listing or a diff shows of an entry.
pub use super::manifest::{Entry, Kind, RelPath};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("`{0}` is an absolute path; give paths relative to the workspace's root")]
    Absolute(RelPath),
    #[error("`{0}` leads out of the workspace (`..`)")]
    Parent(RelPath),
    #[error("`{0}` names no path (a NUL byte)")]
    Nul(RelPath),
}

/// Paths that match nothing in a snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("snapshot `{id}` holds nothing at {}", shown(.paths))]
pub struct NoMatch {
    pub id: String,
    pub paths: Vec<RelPath>,
}

fn shown(paths: &[RelPath]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
    quoted.join(", ")
}

/// A path as the user types it, relative to the workspace's root: a trailing `/`, `./` and
/// doubled slashes are accepted; `.` alone (or `./`) is the whole snapshot (the empty path).
pub fn parse_path(text: &[u8]) -> Result<RelPath, PathError> {
    let whole = || RelPath(text.to_vec());
    if text.contains(&0) {
        return Err(PathError::Nul(whole()));
    }
    if text.starts_with(b"/") {
        return Err(PathError::Absolute(whole()));
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in text.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathError::Parent(whole())),
            part => parts.push(part),
        }
    }
    Ok(RelPath(parts.join(&b'/')))
}

/// Whether `path` is `filter` or lies below it; the empty filter matches everything.
pub fn matches(filter: &RelPath, path: &RelPath) -> bool {
    let (filter, path) = (&filter.0, &path.0);
    filter.is_empty()
        || path
            .strip_prefix(filter.as_slice())
            .is_some_and(|rest| rest.is_empty() || rest.first() == Some(&b'/'))
}

/// The entries that one of `filters` matches (all of them when there are no filters), in the
/// manifest's order; an error naming every filter that matched nothing.
pub fn select<'a>(manifest: &'a Manifest, filters: &[RelPath]) -> Result<Vec<&'a Entry>, NoMatch> {
    let chosen = chosen(manifest, filters)?;
    Ok(manifest
        .entries
        .iter()
        .zip(chosen)
        .filter_map(|(entry, chosen)| chosen.then_some(entry))
        .collect())
}

/// For each entry, whether a filter matches it.
fn chosen(manifest: &Manifest, filters: &[RelPath]) -> Result<Vec<bool>, NoMatch> {
    if filters.is_empty() {
        return Ok(vec![true; manifest.entries.len()]);
    }
    let mut used = vec![false; filters.len()];
    let mut chosen = vec![false; manifest.entries.len()];
    for (entry, chosen) in manifest.entries.iter().zip(chosen.iter_mut()) {
        for (filter, used) in filters.iter().zip(used.iter_mut()) {
            if matches(filter, &entry.path) {
                *used = true;
                *chosen = true;
            }
        }
    }
    let missing: Vec<RelPath> = filters
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(filter, _)| filter.clone())
        .collect();
    if !missing.is_empty() {
        return Err(NoMatch {
            id: manifest.summary.id.clone(),
            paths: missing,
        });
    }
    Ok(chosen)
}

/// The part of `manifest` that `filters` match, for restore: the matching entries, and the
/// `dir` entries of the folders they lie in, so that those keep their modes. No filter: the
/// whole manifest, borrowed.
pub fn part<'a>(manifest: &'a Manifest, filters: &[RelPath]) -> Result<Cow<'a, Manifest>, NoMatch> {
    if filters.is_empty() {
        return Ok(Cow::Borrowed(manifest));
    }
    let chosen = chosen(manifest, filters)?;
    let mut above: HashSet<&[u8]> = HashSet::new();
    for (entry, _) in manifest.entries.iter().zip(&chosen).filter(|(_, c)| **c) {
        let mut path = entry.path.0.as_slice();
        while let Some(end) = path.iter().rposition(|&b| b == b'/') {
            path = &path[..end];
            if !above.insert(path) {
                break; // this folder's own folders are in already
            }
        }
    }
    let entries = manifest
        .entries
        .iter()
        .zip(&chosen)
        .filter(|(e, chosen)| {
            **chosen || (matches!(e.kind, Kind::Dir { .. }) && above.contains(e.path.0.as_slice()))
        })
        .map(|(e, _)| e.clone())
        .collect();
    Ok(Cow::Owned(Manifest {
        version: manifest.version,
        summary: manifest.summary.clone(),
        entries,
    }))
}

/// How a path differs between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Only in the second.
    #[serde(rename = "A")]
    Added,
    /// Only in the first.
    #[serde(rename = "D")]
    Deleted,
    /// Other content, size, kind or link target.
    #[serde(rename = "M")]
    Modified,
    /// The same content, other permission bits.
    #[serde(rename = "m")]
    Mode,
}

impl Status {
    pub fn letter(self) -> char {
        match self {
            Status::Added => 'A',
            Status::Deleted => 'D',
            Status::Modified => 'M',
            Status::Mode => 'm',
        }
    }
}

/// One changed path: the entry before (absent when added) and after (absent when deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    pub status: Status,
    pub old: Option<&'a Entry>,
    pub new: Option<&'a Entry>,
}

impl Change<'_> {
    pub fn path(&self) -> &RelPath {
        let entry = self.new.or(self.old);
        &entry.expect("a change has an entry on one side").path
    }
}

/// The files and links that differ between `old` and `new`, sorted by path. Folders are not
/// compared (a store records only some of them); a change of modification time alone is not
/// a change.
pub fn diff<'a>(old: &'a Manifest, new: &'a Manifest) -> Vec<Change<'a>> {
    let listed = |m: &'a Manifest| {
        let mut entries: Vec<&'a Entry> = m
            .entries
            .iter()
            .filter(|e| !matches!(e.kind, Kind::Dir { .. }))
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    };
    let (old, new) = (listed(old), listed(new));
    let (mut i, mut j) = (0, 0);
    let mut changes = Vec::new();
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) => a.path.cmp(&b.path),
            (Some(_), None) => Ordering::Less,
            (None, _) => Ordering::Greater,
        };
        let change = match order {
            Ordering::Less => {
                i += 1;
                Some((Status::Deleted, Some(old[i - 1]), None))
            }
            Ordering::Greater => {
                j += 1;
                Some((Status::Added, None, Some(new[j - 1])))
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
                compare(&old[i - 1].kind, &new[j - 1].kind)
                    .map(|status| (status, Some(old[i - 1]), Some(new[j - 1])))
            }
        };
        if let Some((status, old, new)) = change {
            changes.push(Change { status, old, new });
        }
    }
    changes
}

/// How one path's two versions differ, if they do.
fn compare(old: &Kind, new: &Kind) -> Option<Status> {
    match (old, new) {
        (
            Kind::File {
                mode: old_mode,
                size: old_size,
                hash: old_hash,
                ..
            },
            Kind::File {
                mode, size, hash, ..
            },
        ) => {
            if old_size != size || old_hash != hash {
                Some(Status::Modified)
            } else if old_mode != mode {
                Some(Status::Mode)
            } else {
                None
            }
        }
        (Kind::Symlink { target: old }, Kind::Symlink { target }) => {
            (old != target).then_some(Status::Modified)
        }
        _ => Some(Status::Modified),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> RelPath {
        RelPath(text.as_bytes().to_vec())
    }

    fn file(name: &str, content: &str, mode: u32) -> Entry {
        Entry {
            path: path(name),
            kind: Kind::File {
                mode,
                size: content.len() as u64,
                hash: crate::snapshot::id::Hash::of(content.as_bytes()),
                mtime_ns: content.len() as i64,
                blobs: vec![],
            },
        }
    }

    fn dir(name: &str) -> Entry {
        Entry {
            path: path(name),
            kind: Kind::Dir { mode: 0o755 },
        }
    }

    fn link(name: &str, target: &str) -> Entry {
        Entry {
            path: path(name),
            kind: Kind::Symlink {
                target: path(target),
            },
        }
    }

    use super::super::manifest::test_manifest as manifest;

    fn paths(entries: &[&Entry]) -> Vec<String> {
        entries.iter().map(|e| e.path.to_string()).collect()
    }

    #[test]
    fn user_paths_are_relative_and_clean() {
        assert_eq!(parse_path(b"a/b/"), Ok(path("a/b")));
        assert_eq!(parse_path(b"./a//b"), Ok(path("a/b")));
        assert_eq!(parse_path(b"-x y\n"), Ok(path("-x y\n")));
        assert_eq!(parse_path(b"."), Ok(path("")));
        assert_eq!(parse_path(b"caf\xe9"), Ok(RelPath(b"caf\xe9".to_vec())));
        assert!(matches!(parse_path(b"/etc"), Err(PathError::Absolute(_))));
        assert!(matches!(parse_path(b"a/../b"), Err(PathError::Parent(_))));
        assert!(matches!(parse_path(b"a\0"), Err(PathError::Nul(_))));
    }

    #[test]
    fn a_path_matches_itself_and_what_lies_below_it() {
        assert!(matches(&path("a"), &path("a")));
        assert!(matches(&path("a"), &path("a/b/c")));
        assert!(!matches(&path("a"), &path("ab")), "not a prefix of a name");
        assert!(!matches(&path("a/b"), &path("a")));
        assert!(matches(&path(""), &path("anything")));
    }

    #[test]
    fn select_names_every_path_that_matches_nothing() {
        let m = manifest(vec![
            file("a b/x", "1", 0o644),
            file("a b/y", "2", 0o644),
            file("ab", "3", 0o644),
        ]);
        assert_eq!(
            paths(&select(&m, &[path("a b")]).expect("matches")),
            ["a b/x", "a b/y"]
        );
        assert_eq!(select(&m, &[]).expect("all").len(), 3);
        assert_eq!(
            select(&m, &[path("ab"), path("nope"), path("a")]),
            Err(NoMatch {
                id: "id".into(),
                paths: vec![path("nope"), path("a")]
            })
        );
    }

    #[test]
    fn a_part_keeps_the_folders_it_lies_in_and_nothing_else() {
        let m = manifest(vec![
            dir(".git"),
            dir(".git/objects"),
            dir(".git/objects/04"),
            file(".git/objects/04/abc", "", 0o444),
            dir(".git/refs"),
            file(".git/refs/x", "r", 0o644),
            file("note.py", "n", 0o644),
        ]);
        let wanted = parse_path(b".git/objects/04/abc/").expect("a path");
        let part = part(&m, &[wanted]).expect("matches");
        assert_eq!(
            paths(&part.entries.iter().collect::<Vec<_>>()),
            [
                ".git",
                ".git/objects",
                ".git/objects/04",
                ".git/objects/04/abc"
            ]
        );
        assert_eq!(part.validate(), Ok(()));
        assert!(matches!(
            super::part(&m, &[]).expect("all"),
            Cow::Borrowed(_)
        ));
        assert!(super::part(&m, &[path(".git/obj")]).is_err());
    }

    #[test]
    fn diff_finds_added_deleted_modified_and_mode_changes_sorted() {
        let old = manifest(vec![
            dir(".git"),
            file("b", "same", 0o644),
            file("d", "gone", 0o644),
            file("m", "old", 0o644),
            file("x", "same", 0o644),
            link("l", "b"),
            file("t", "kind", 0o644),
        ]);
        let mut touched = file("b", "same", 0o644);
        if let Kind::File { mtime_ns, .. } = &mut touched.kind {
            *mtime_ns += 1;
        }
        let new = manifest(vec![
            dir(".git/new-folder"),
            file("a", "new", 0o644),
            touched,
            file("m", "new", 0o644),
            file("x", "same", 0o755),
            link("l", "m"),
            link("t", "b"),
        ]);
        let changes: Vec<(char, String)> = diff(&old, &new)
            .iter()
            .map(|c| (c.status.letter(), c.path().to_string()))
            .collect();
        let expected = [
            ('A', "a"),
            ('D', "d"),
            ('M', "l"),
            ('M', "m"),
            ('M', "t"),
            ('m', "x"),
        ]
        .map(|(s, p)| (s, p.to_string()));
        assert_eq!(changes, expected);
        assert!(diff(&old, &old).is_empty());
    }
}
