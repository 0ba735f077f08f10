//! A store in a local folder (or an EFS / NFS mount): one file per object.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{ByteStream, Object, Store, StoreError};
use crate::fs::TEMPORARY_PREFIX;

#[derive(Debug, Clone)]
pub struct DirStore {
    root: Arc<PathBuf>,
    name: Arc<str>,
}

impl DirStore {
    pub fn new(root: PathBuf) -> Self {
        let name = root.display().to_string().into();
        Self {
            root: Arc::new(root),
            name,
        }
    }

    /// The file of `key`, which must be relative and clean (no `..`, `.` or empty segment), and
    /// reached through real folders only: a link inside the store could lead anywhere.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let bad_key = || StoreError::BadKey {
            store: self.name.to_string(),
            key: key.escape_debug().to_string(),
        };
        if !is_clean_key(key) {
            return Err(bad_key());
        }
        let mut folder = self.root.to_path_buf();
        let mut segments = key.split('/').peekable();
        while let Some(segment) = segments.next() {
            if segments.peek().is_none() {
                break;
            }
            folder.push(segment);
            match std::fs::symlink_metadata(&folder) {
                Ok(metadata) if !metadata.is_dir() => return Err(bad_key()),
                Ok(_) => {}
                // Not there yet: a put creates it, a read finds nothing.
                Err(_) => break,
            }
        }
        Ok(self.root.join(key))
    }

    /// Opens the object at `key` for reading: a regular file of at most `limit` bytes, never
    /// through a link, and never blocking on a pipe.
    fn open(&self, key: &str, limit: u64) -> Result<std::fs::File, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(self.path(key)?)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StoreError::NotFound {
                    store: self.name.to_string(),
                    key: key.to_string(),
                },
                _ => self.io_error("reading", key, e),
            })?;
        let metadata = file
            .metadata()
            .map_err(|e| self.io_error("reading", key, e))?;
        if !metadata.is_file() || metadata.len() > limit {
            let what = if metadata.is_file() {
                "larger than any object gitkit writes"
            } else {
                "not a regular file"
            };
            let e = std::io::Error::new(std::io::ErrorKind::InvalidData, what);
            return Err(self.io_error("reading", key, e));
        }
        Ok(file)
    }

    fn io_error(&self, action: &'static str, key: &str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            store: self.name.to_string(),
            action,
            key: key.to_string(),
            source,
        }
    }
}

impl Store for DirStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let store = self.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            crate::fs::write_atomically(&store.path(&key)?, &data)
                .map_err(|e| store.io_error("writing", &key, e))
        })
        .await
        .expect("the write task does not panic")
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let store = self.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = store.open(&key, super::MAX_GET)?;
            let mut data = Vec::new();
            file.read_to_end(&mut data)
                .map_err(|e| store.io_error("reading", &key, e))?;
            Ok(Bytes::from(data))
        })
        .await
        .expect("the read task does not panic")
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StoreError> {
        use tokio::io::AsyncReadExt;
        const PIECE: usize = 256 << 10;
        let file = tokio::fs::File::from_std(self.open(key, u64::MAX)?);
        let (store, key) = (self.clone(), key.to_string());
        let pieces = futures::stream::try_unfold(file, move |mut file| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                let mut piece = bytes::BytesMut::with_capacity(PIECE);
                while piece.len() < PIECE {
                    if file
                        .read_buf(&mut piece)
                        .await
                        .map_err(|e| store.io_error("reading", &key, e))?
                        == 0
                    {
                        break;
                    }
                }
                Ok((!piece.is_empty()).then(|| (piece.freeze(), file)))
            }
        });
        Ok(Box::pin(pieces))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error("deleting", key, e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match tokio::fs::symlink_metadata(self.path(key)?).await {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error("checking", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Object>, StoreError> {
        // The prefix up to its last `/` must be a clean key; what follows is a name's start.
        let folder = prefix.rfind('/').map_or("", |end| &prefix[..end]);
        if !folder.is_empty() {
            self.path(folder)?;
        }
        let folder_owned = folder.to_string();
        let store = self.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            if !folder_owned.is_empty()
                && std::fs::symlink_metadata(store.root.join(&folder_owned))
                    .is_ok_and(|m| !m.is_dir())
            {
                return Err(StoreError::BadKey {
                    store: store.name.to_string(),
                    key: prefix.escape_debug().to_string(),
                });
            }
            // Walk from the deepest folder the prefix names, then filter by the whole prefix.
            let start = match prefix.rfind('/') {
                Some(end) => store.root.join(&prefix[..end]),
                None => store.root.to_path_buf(),
            };
            // What another writer removes while this lists (a prune deleting marks and packs)
            // is simply not listed: neither a folder gone before it is read nor a file gone
            // before it is looked at is an error, nor a reason to stop listing the rest.
            let vanished = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
            for entry in walkdir::WalkDir::new(&start).min_depth(1) {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) if e.io_error().is_some_and(vanished) => continue,
                    Err(e) => return Err(store.io_error("listing", &prefix, e.into())),
                };
                if !entry.file_type().is_file() || is_temporary(entry.path()) {
                    continue;
                }
                let Ok(relative) = entry.path().strip_prefix(store.root.as_path()) else {
                    continue;
                };
                let key = relative.to_string_lossy().replace('\\', "/");
                if key.starts_with(&prefix) {
                    let metadata = match entry.metadata() {
                        Ok(metadata) => metadata,
                        Err(e) if e.io_error().is_some_and(vanished) => continue,
                        Err(e) => return Err(store.io_error("listing", &prefix, e.into())),
                    };
                    keys.push(Object {
                        key,
                        size: metadata.len(),
                        modified: metadata.modified().unwrap_or(std::time::UNIX_EPOCH),
                    });
                }
            }
            Ok(keys)
        })
        .await
        .expect("the list task does not panic")
    }
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with(TEMPORARY_PREFIX))
}

/// A relative key of non-empty segments, none `.` or `..`, with no NUL or backslash.
fn is_clean_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains(['\0', '\\'])
        && key
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_leave_the_folder() {
        assert!(is_clean_key("data/ab/abcdef"));
        for bad in [
            "",
            "/etc/hostname",
            "data/../../etc",
            "a//b",
            "./a",
            "a/",
            "a\0b",
        ] {
            assert!(!is_clean_key(bad), "{bad:?}");
        }
    }
}
