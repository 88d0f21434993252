//! storage: files in S3-compatible object storage (R2, S3, MinIO, Garage; s3s-fs in development), private by
//! default.
//!
//! It owns the `storage` schema (each object's metadata, each tenant's policy and usage) and the objects under
//! `tenants/<tenant>/` in its bucket. Browsers upload straight to the store with presigned links and download with
//! one-minute links; servers may stream a file through it. It never serves a file without checking the caller's
//! tenant, never names an object after client text, and never reads another service's tables; other services keep
//! their files here through its API and learn of them from its events (`storage.object.*`).

pub mod app;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod store;
