//! A store in an S3 bucket, through the AWS SDK with its standard credential chain and endpoint
//! settings (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`).
//!
//! Every request is bounded, so that an endpoint that accepts connections and never answers
//! fails a command rather than hanging it: a connect timeout, a timeout for the first byte of
//! the answer (an upload gets more time for its body), a few retries at most, and, while a
//! body streams, the SDK's stalled-stream protection: a body that makes no progress for a while
//! fails, rather than a deadline for the whole transfer, which may be slow and alive.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::StalledStreamProtectionConfig;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as Body;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::region::Region;
use bytes::Bytes;
use tokio::sync::OnceCell;

use futures::TryStreamExt;

use super::{ByteStream, Object, Store, StoreError};
use crate::aws::{self, Profile};

/// Where no region is configured anywhere: S3's own default.
const FALLBACK_REGION: &str = "us-east-1";

/// How requests are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection (TCP and TLS).
    pub connect: Duration,
    /// From sending a request to the first byte of its answer. S3 answers in milliseconds;
    /// this is for an endpoint that has stopped answering at all.
    pub first_byte: Duration,
    /// An upload's body may take this long per MiB on top of `first_byte`: 8 s/MiB is about
    /// 1 Mbit/s, so that a slow uplink still gets a 4 MiB pack through.
    pub upload_per_mib: Duration,
    /// How long a body (download or upload) may make no progress at all; a slow one that
    /// keeps moving is never cut.
    pub stall: Duration,
    /// Attempts per request at most, the first included (`AWS_MAX_ATTEMPTS` may lower it).
    pub max_attempts: u32,
}

impl Default for Timeouts {
    /// Against an endpoint that never answers, a request fails after about
    /// 3 × 20 s + backoff, well within two minutes.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(20),
            upload_per_mib: Duration::from_secs(8),
            stall: Duration::from_secs(20),
            max_attempts: 3,
        }
    }
}

impl Timeouts {
    fn config(&self, first_byte: Duration) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(first_byte)
            .build()
    }

    /// The first-byte timeout of an upload of `len` bytes: its body goes out first.
    fn for_upload(&self, len: usize) -> Duration {
        let mib = len.div_ceil(1 << 20) as u32;
        self.first_byte + self.upload_per_mib.saturating_mul(mib)
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    /// Built on first use: a command that finds nothing to do never pays for TLS set-up,
    /// credential look-ups and configuration files.
    client: Arc<OnceCell<Client>>,
    options: Arc<S3Options>,
    bucket: Arc<str>,
    prefix: Arc<str>,
    name: Arc<str>,
}

/// How to reach S3.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub profile: Profile,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint`: needed by most
    /// S3-compatible servers behind a custom endpoint URL.
    pub path_style: bool,
    pub timeouts: Timeouts,
}

impl S3Store {
    pub fn new(bucket: &str, prefix: &str, options: &S3Options) -> Self {
        let name = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        Self {
            client: Arc::new(OnceCell::new()),
            options: Arc::new(options.clone()),
            bucket: bucket.into(),
            prefix: prefix.into(),
            name: name.into(),
        }
    }

    async fn client(&self) -> &Client {
        self.client.get_or_init(|| connect(&self.options)).await
    }

    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn error<E>(&self, action: &'static str, key: &str, error: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let store = self.name.to_string();
        let status = error
            .raw_response()
            .map(|response| response.status().as_u16());
        let code = error.code().map(str::to_string);
        let detail = match (&code, error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.clone(),
            _ if matches!(
                error,
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
            ) =>
            {
                format!("could not reach the S3 endpoint: {}", innermost(&error))
            }
            _ => aws::one_line(&DisplayErrorContext(&error).to_string()),
        };
        if has_cause::<CredentialsError>(&error) {
            let detail = format!(
                "no AWS credentials found (tried {})",
                aws::CREDENTIAL_SOURCES
            );
            return StoreError::Denied { store, detail };
        }
        match (code.as_deref(), status) {
            (Some("NoSuchBucket"), _) => StoreError::NoBucket { store },
            (Some("NoSuchKey"), _) | (_, Some(404)) => StoreError::NotFound {
                store,
                key: key.to_string(),
            },
            (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
            | (_, Some(401 | 403)) => StoreError::Denied { store, detail },
            _ => StoreError::Failed {
                store,
                action,
                key: key.to_string(),
                detail,
            },
        }
    }
}

impl S3Store {
    /// Starts a GET: the object's length and its body as it arrives.
    async fn open_object(&self, key: &str) -> Result<(usize, ByteStream), StoreError> {
        let object = self
            .client()
            .await
            .get_object()
            .bucket(&*self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| self.error("reading", key, e))?;
        let length = object.content_length().unwrap_or(0).max(0) as usize;
        let (store, key) = (self.name.to_string(), key.to_string());
        let body = futures::stream::try_unfold(object.body, move |mut body| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                match body.try_next().await {
                    Ok(Some(piece)) => Ok(Some((piece, body))),
                    Ok(None) => Ok(None),
                    // The SDK's stalled-stream protection ends a body that stops coming.
                    Err(e) => Err(StoreError::Failed {
                        store,
                        action: "reading",
                        key,
                        detail: format!("the download stalled or broke off: {}", innermost(&e)),
                    }),
                }
            }
        });
        Ok((length, Box::pin(body)))
    }
}

/// An S3 client with the SDK's standard configuration: region, credentials and endpoint.
async fn connect(options: &S3Options) -> Client {
    let region = aws::default_region(&options.profile)
        .await
        .unwrap_or_else(|| Region::new(FALLBACK_REGION));
    let credentials = aws::credentials_provider(&options.profile, region.clone()).await;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials);
    if let Some(name) = &options.profile.0 {
        loader = loader.profile_name(name);
    }
    let timeouts = &options.timeouts;
    let sdk_config = loader
        .timeout_config(timeouts.config(timeouts.first_byte))
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(timeouts.stall)
                .build(),
        )
        .load()
        .await;
    // The SDK's retry settings (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, the profile's), capped.
    let retry = sdk_config
        .retry_config()
        .cloned()
        .unwrap_or_else(RetryConfig::standard);
    let attempts = retry.max_attempts().clamp(1, timeouts.max_attempts);
    let config = aws_sdk_s3::config::Builder::from(&sdk_config)
        .force_path_style(options.path_style)
        .retry_config(
            retry
                .with_max_attempts(attempts)
                .with_max_backoff(Duration::from_secs(5)),
        )
        .build();
    Client::from_conf(config)
}

impl Store for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let timeouts = &self.options.timeouts;
        let upload = timeouts.config(timeouts.for_upload(data.len()));
        self.client()
            .await
            .put_object()
            .bucket(&*self.bucket)
            .key(self.key(key))
            .body(Body::from(data))
            .customize()
            .config_override(aws_sdk_s3::config::Builder::new().timeout_config(upload))
            .send()
            .await
            .map_err(|e| self.error("writing", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let (length, mut pieces) = self.open_object(key).await?;
        // One buffer of the object's size, filled as the body streams in: collecting the body
        // and then joining its pieces would hold the object twice.
        let mut data = bytes::BytesMut::with_capacity(length);
        while let Some(piece) = pieces.try_next().await? {
            data.extend_from_slice(&piece);
        }
        Ok(data.freeze())
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream, StoreError> {
        Ok(self.open_object(key).await?.1)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        // S3 answers a delete of a missing key with success too.
        self.client()
            .await
            .delete_object()
            .bucket(&*self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| self.error("deleting", key, e))?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let result = self
            .client()
            .await
            .head_object()
            .bucket(&*self.bucket)
            .key(self.key(key))
            .send()
            .await;
        match result.map_err(|e| self.error("checking", key, e)) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Object>, StoreError> {
        let full_prefix = self.key(prefix);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut pages = self
            .client()
            .await
            .list_objects_v2()
            .bucket(&*self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("listing", prefix, e))?;
            keys.extend(page.contents().iter().filter_map(|object| {
                let key = object.key()?;
                Some(Object {
                    key: key.get(strip..)?.to_string(),
                    size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                    modified: object
                        .last_modified()
                        .and_then(|time| std::time::SystemTime::try_from(*time).ok())
                        .unwrap_or(std::time::UNIX_EPOCH),
                })
            }));
        }
        Ok(keys)
    }
}

fn has_cause<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current.is::<T>() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// The root cause's own words: "connection refused", "connection closed before message
/// completed", "HTTP read timeout occurred after 20s" (rather than its bare "timed out").
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    let mut words = cause.to_string();
    while let Some(source) = cause.source() {
        cause = source;
        let text = cause.to_string();
        if text != "timed out" {
            words = text;
        }
    }
    words
}
