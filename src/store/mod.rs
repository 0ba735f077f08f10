//! The object stores snapshots live in: S3 (or anything that speaks it) and a plain folder.
//!
//! Keys are `/`-separated and relative to the store's root (`s3://bucket/prefix` or the
//! folder). Objects are written whole and never modified, so a store needs only put, get and
//! list.

mod dir;
mod s3;

use std::future::Future;
use std::path::PathBuf;

use bytes::Bytes;

pub use dir::DirStore;
pub use s3::{S3Options, S3Store, Timeouts};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{store}: no object {key}")]
    NotFound { store: String, key: String },
    #[error("{store}: access denied ({detail})")]
    Denied { store: String, detail: String },
    #[error("{store}: the bucket does not exist")]
    NoBucket { store: String },
    #[error("{store}: {action} {key} failed: {detail}")]
    Failed {
        store: String,
        action: &'static str,
        key: String,
        detail: String,
    },
    #[error("{store}: `{key}` is not a key gitkit writes")]
    BadKey { store: String, key: String },
    #[error("{store}: {action} {key} failed")]
    Io {
        store: String,
        action: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// A file of this machine's that work on the store needs (a temporary file, the local
    /// copy of the store's index) could not be used.
    #[error("this machine: {action} {what} failed")]
    Local {
        action: &'static str,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// How the user fixes it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StoreError::Denied { .. } => Some(
                "check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and that they may \
                 read and write the bucket",
            ),
            StoreError::NoBucket { .. } => {
                Some("create the bucket, or point --store / gitkit.store at an existing one")
            }
            StoreError::Failed { .. } | StoreError::Io { .. } => {
                Some("check that the store is reachable, then run the command again")
            }
            StoreError::Local { .. } => Some(
                "check that the folder for temporary files (TMPDIR; .git/gitkit for a snapshot) \
                 exists, is writable and has room",
            ),
            StoreError::NotFound { .. } | StoreError::BadKey { .. } => None,
        }
    }
}

/// An object's bytes as they arrive.
pub type ByteStream = futures::stream::BoxStream<'static, Result<Bytes, StoreError>>;

/// Where objects are kept. Implementations are cheap to clone and shared between tasks.
pub trait Store: Clone + Send + Sync + 'static {
    /// The store as the user named it, for messages.
    fn name(&self) -> &str;

    /// Writes `data` at `key`, whole: a reader never sees part of an object.
    fn put(&self, key: &str, data: Bytes) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get(&self, key: &str) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    /// The object at `key` as it arrives, piece by piece, so that large objects need not be
    /// held whole in memory.
    fn get_stream(&self, key: &str) -> impl Future<Output = Result<ByteStream, StoreError>> + Send;

    /// Every object whose key starts with `prefix`, with its size.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<Object>, StoreError>> + Send;

    /// Whether an object is at `key`, without reading it.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes the object at `key`; one that is not there (any more) is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The most `get` reads into memory: larger objects are streamed with `get_stream`, or refused.
pub const MAX_GET: u64 = 256 << 20;

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// When it was written, by the store's clock.
    pub modified: std::time::SystemTime,
}

/// A store as the user writes it: `s3://bucket/prefix`, `file:///path`, or a folder path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    Dir(PathBuf),
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a store: use s3://BUCKET/PREFIX, file:///PATH or a folder path")]
pub struct BadLocation(String);

impl Location {
    pub fn parse(text: &str) -> Result<Self, BadLocation> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BadLocation(text.to_string()));
            }
            let prefix = prefix.trim_matches('/');
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        let path = text.strip_prefix("file://").unwrap_or(text);
        if path.is_empty() || text.contains("://") && !text.starts_with("file://") {
            return Err(BadLocation(text.to_string()));
        }
        Ok(Location::Dir(PathBuf::from(path)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Dir(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Either kind of store, chosen at run time.
#[derive(Debug, Clone)]
pub enum AnyStore {
    S3(S3Store),
    Dir(DirStore),
}

impl AnyStore {
    pub fn open(location: &Location, s3: &S3Options) -> Self {
        match location {
            Location::S3 { bucket, prefix } => AnyStore::S3(S3Store::new(bucket, prefix, s3)),
            Location::Dir(path) => AnyStore::Dir(DirStore::new(path.clone())),
        }
    }
}

impl Store for AnyStore {
    fn name(&self) -> &str {
        match self {
            AnyStore::S3(store) => store.name(),
            AnyStore::Dir(store) => store.name(),
        }
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        match self {
            AnyStore::S3(store) => store.put(key, data).await,
            AnyStore::Dir(store) => store.put(key, data).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        match self {
            AnyStore::S3(store) => store.get(key).await,
            AnyStore::Dir(store) => store.get(key).await,
        }
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StoreError> {
        match self {
            AnyStore::S3(store) => store.get_stream(key).await,
            AnyStore::Dir(store) => store.get_stream(key).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Object>, StoreError> {
        match self {
            AnyStore::S3(store) => store.list(prefix).await,
            AnyStore::Dir(store) => store.list(prefix).await,
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self {
            AnyStore::S3(store) => store.exists(key).await,
            AnyStore::Dir(store) => store.exists(key).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::S3(store) => store.delete(key).await,
            AnyStore::Dir(store) => store.delete(key).await,
        }
    }
}

/// A folder store's path as one name whichever way it was reached: resolved where it exists
/// (or where its parent does), else as given. `path` must be absolute.
pub fn absolute(path: &std::path::Path) -> PathBuf {
    if let Ok(resolved) = path.canonicalize() {
        return resolved;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|parent| parent.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// Which store to use: `--store`, else `GITKIT_STORE`, else git config `gitkit.store`, else the
/// folder `store` under gitkit's home.
pub fn choose<'a>(
    flag: Option<&'a str>,
    env: Option<&'a str>,
    config: Option<&'a str>,
    home: &std::path::Path,
) -> Result<Location, BadLocation> {
    // An empty value is no value: `GITKIT_STORE=` does not hide gitkit.store.
    let given = |s: Option<&'a str>| s.filter(|s| !s.is_empty());
    match given(flag).or(given(env)).or(given(config)) {
        Some(text) => Location::parse(text),
        None => Ok(Location::Dir(home.join("store"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_locations() {
        assert_eq!(
            Location::parse("s3://bucket/team/ws/").expect("valid"),
            Location::S3 {
                bucket: "bucket".into(),
                prefix: "team/ws".into()
            }
        );
        assert_eq!(
            Location::parse("s3://bucket").expect("valid"),
            Location::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("file:///mnt/efs/snapshots").expect("valid"),
            Location::Dir("/mnt/efs/snapshots".into())
        );
        assert_eq!(
            Location::parse("./snaps").expect("valid"),
            Location::Dir("./snaps".into())
        );
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("gs://bucket").is_err());
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn flag_then_env_then_config_then_home() {
        let home = std::path::Path::new("/h");
        let pick = |f, e, c| choose(f, e, c, home).expect("valid").to_string();
        assert_eq!(
            pick(Some("s3://f"), Some("s3://e"), Some("s3://c")),
            "s3://f"
        );
        assert_eq!(pick(None, Some("s3://e"), Some("s3://c")), "s3://e");
        assert_eq!(pick(None, None, Some("s3://c")), "s3://c");
        assert_eq!(pick(None, None, None), "/h/store");
        assert_eq!(
            pick(Some(""), Some(""), Some("s3://c")),
            "s3://c",
            "empty is unset"
        );
    }
}
