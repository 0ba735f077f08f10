//! `gitkit ls` and `gitkit diff`: a snapshot's files, and what changed between two, read from
//! their manifests without restoring anything.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::snapshot::{only_workspace, warn_damaged};
use super::workspace::{location, open};
use crate::cli::{DiffArgs, LsArgs, StoreArgs};
use crate::error::Hinted;
use crate::snapshot::{self, Entry, Kind, Manifest, RelPath, Workspace};
use crate::text::printable_bytes;

/// Paths from the command line, relative to the workspace's root (`note.py`, `data/`).
pub fn parse_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<RelPath>> {
    paths
        .iter()
        .map(|path| {
            snapshot::parse_path(path.as_os_str().as_bytes()).map_err(|e| {
                Hinted::new(
                    e,
                    "`gitkit ls ID` prints the paths a snapshot holds, as they are named",
                )
                .into()
            })
        })
        .collect()
}

pub fn ls(args: LsArgs, dir: &Path) -> anyhow::Result<()> {
    let filters = parse_paths(&args.paths)?;
    let [manifest] = manifests(&args.store, args.workspace.clone(), dir, [&args.snapshot])?;
    let mut entries: Vec<&Entry> = snapshot::select(&manifest, &filters)?
        .into_iter()
        .filter(|e| !matches!(e.kind, Kind::Dir { .. }))
        .collect();
    // Folders are left out: a store records only some of them, which would make two formats
    // list the same snapshot differently.
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let listed: Vec<Listed> = entries.iter().map(|e| Listed::from(*e)).collect();
        serde_json::to_writer_pretty(&mut stdout, &listed)?;
        writeln!(stdout)?;
    } else if args.long {
        write_long(&mut stdout, &entries)?;
    } else {
        for entry in entries {
            writeln!(stdout, "{}", printable_bytes(&entry.path.0))?;
        }
    }
    Ok(())
}

pub fn diff(args: DiffArgs, dir: &Path) -> anyhow::Result<()> {
    let [old, new] = manifests(
        &args.store,
        args.workspace.clone(),
        dir,
        [&args.old, &args.new],
    )?;
    let changes = snapshot::diff(&old, &new);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let changes: Vec<Changed> = changes
            .iter()
            .map(|c| Changed {
                status: c.status,
                path: c.path(),
                old: c.old.map(Listed::from),
                new: c.new.map(Listed::from),
            })
            .collect();
        serde_json::to_writer_pretty(&mut stdout, &changes)?;
        writeln!(stdout)?;
    } else {
        for change in changes {
            let path = printable_bytes(&change.path().0);
            writeln!(stdout, "{}\t{path}", change.status.letter())?;
        }
    }
    Ok(())
}

/// The manifests of snapshots `ids` of one workspace: `--workspace`, else the current
/// repository's, else the store's only one. Damaged snapshots passed over for `latest` are
/// named on stderr.
fn manifests<const N: usize>(
    store: &StoreArgs,
    workspace: Option<String>,
    dir: &Path,
    ids: [&String; N],
) -> anyhow::Result<[Manifest; N]> {
    let current = Workspace::discover(dir).ok();
    let location = location(store.store.as_deref(), current.as_ref(), dir)?;
    super::runtime().block_on(async {
        let store = open(&location, store.profile.clone());
        let name = match workspace.or_else(|| current.map(|w| w.name)) {
            Some(name) => name,
            None => only_workspace(&store).await?,
        };
        let mut found = Vec::with_capacity(N);
        for id in ids {
            let (manifest, damaged) = snapshot::find(&store, &name, id).await?;
            warn_damaged(&damaged)?;
            found.push(manifest);
        }
        Ok(found
            .try_into()
            .map_err(|_| ())
            .expect("one manifest per id"))
    })
}

/// An entry as `ls --json` and `diff --json` print it: what the manifest says of it, without
/// where its content is stored.
#[derive(Serialize)]
struct Listed<'a> {
    path: &'a RelPath,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<&'a crate::snapshot::id::Hash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtime_ns: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a RelPath>,
}

impl<'a> From<&'a Entry> for Listed<'a> {
    fn from(entry: &'a Entry) -> Self {
        let mut listed = Listed {
            path: &entry.path,
            kind: "file",
            mode: None,
            size: None,
            hash: None,
            mtime_ns: None,
            target: None,
        };
        match &entry.kind {
            Kind::File {
                mode,
                size,
                hash,
                mtime_ns,
                ..
            } => {
                listed.mode = Some(*mode);
                listed.size = Some(*size);
                listed.hash = Some(hash);
                listed.mtime_ns = Some(*mtime_ns);
            }
            Kind::Symlink { target } => {
                listed.kind = "symlink";
                listed.target = Some(target);
            }
            Kind::Dir { mode } => {
                listed.kind = "dir";
                listed.mode = Some(*mode);
            }
        }
        listed
    }
}

#[derive(Serialize)]
struct Changed<'a> {
    status: snapshot::Status,
    path: &'a RelPath,
    old: Option<Listed<'a>>,
    new: Option<Listed<'a>>,
}

/// `100644  15 2026-11-29T05:25:18Z note book.py`; a link: `120000   - - link -> target`.
fn write_long(out: &mut impl Write, entries: &[&Entry]) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|entry| {
            let path = printable_bytes(&entry.path.0);
            match &entry.kind {
                Kind::File {
                    mode,
                    size,
                    mtime_ns,
                    ..
                } => {
                    let mtime = UNIX_EPOCH + Duration::from_nanos((*mtime_ns).max(0) as u64);
                    [
                        format!("{:06o}", 0o100000 | (mode & 0o7777)),
                        size.to_string(),
                        crate::time::rfc3339(mtime),
                        path.into_owned(),
                    ]
                }
                Kind::Symlink { target } => [
                    "120000".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    format!("{path} -> {}", printable_bytes(&target.0)),
                ],
                Kind::Dir { mode } => [
                    format!("{:06o}", 0o040000 | (mode & 0o7777)),
                    "-".to_string(),
                    "-".to_string(),
                    path.into_owned(),
                ],
            }
        })
        .collect();
    let size_width = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
    let time_width = rows.iter().map(|r| r[2].len()).max().unwrap_or(0);
    for [mode, size, time, path] in rows {
        writeln!(out, "{mode} {size:>size_width$} {time:<time_width$} {path}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_listing_aligns_sizes_and_shows_links_and_odd_names() {
        let file = |path: &[u8], mode, size| Entry {
            path: RelPath(path.to_vec()),
            kind: Kind::File {
                mode,
                size,
                hash: crate::snapshot::id::Hash::default(),
                mtime_ns: 1_795_858_200_999_000_000,
                blobs: vec![],
            },
        };
        let link = Entry {
            path: RelPath(b"link".to_vec()),
            kind: Kind::Symlink {
                target: RelPath(b"a\nb".to_vec()),
            },
        };
        let (a, b) = (file(b"run.sh", 0o755, 19), file(b"caf\xe9\n", 0o644, 2048));
        let mut out = Vec::new();
        write_long(&mut out, &[&a, &b, &link]).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "100755   19 2026-11-28T09:30:00Z run.sh\n\
             100644 2048 2026-11-28T09:30:00Z caf\\xe9\\u{a}\n\
             120000    - -                    link -> a\\u{a}b\n"
        );
    }
}
