//! A store in an S3 bucket, through the AWS SDK with its standard credential chain and endpoint
//! settings (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`).

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::region::Region;
use bytes::Bytes;

use super::{Store, StoreError};
use crate::aws::{self, Profile};

/// Where no region is configured anywhere: S3's own default.
const FALLBACK_REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
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
}

impl S3Store {
    pub async fn connect(bucket: &str, prefix: &str, options: &S3Options) -> Self {
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
        let sdk_config = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(options.path_style)
            .build();
        let name = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        Self {
            client: Client::from_conf(config),
            bucket: bucket.into(),
            prefix: prefix.into(),
            name: name.into(),
        }
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
            _ => one_line(&DisplayErrorContext(&error).to_string()),
        };
        match (code.as_deref(), status) {
            (Some("NoSuchBucket"), _) => StoreError::NoBucket { store },
            (Some("NoSuchKey"), _) | (_, Some(404)) => StoreError::NotFound {
                store,
                key: key.to_string(),
            },
            (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
            | (_, Some(401 | 403)) => StoreError::Denied { store, detail },
            _ if detail.contains("no AWS credentials") || detail.contains("no credentials") => {
                StoreError::Denied {
                    store,
                    detail: "no AWS credentials found".to_string(),
                }
            }
            _ => StoreError::Failed {
                store,
                action,
                key: key.to_string(),
                detail,
            },
        }
    }
}

impl Store for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&*self.bucket)
            .key(self.key(key))
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.error("writing", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let object = self
            .client
            .get_object()
            .bucket(&*self.bucket)
            .key(self.key(key))
            .send()
            .await
            .map_err(|e| self.error("reading", key, e))?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Failed {
                store: self.name.to_string(),
                action: "reading",
                key: key.to_string(),
                detail: e.to_string(),
            })?;
        Ok(body.into_bytes())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full_prefix = self.key(prefix);
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("listing", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key())
                    .map(|key| key[strip.min(key.len())..].to_string()),
            );
        }
        Ok(keys)
    }
}

/// The root cause's own words: "connection refused", "connection closed before message completed".
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

fn one_line(text: &str) -> String {
    text.split(" (")
        .next()
        .unwrap_or(text)
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}
