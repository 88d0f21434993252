//! The test S3 server: the one `scripts/test` starts (s3s-fs, which checks SigV4 signatures like a real store),
//! named by `ALMONER_TEST_S3_ENDPOINT`, `_ACCESS_KEY`, `_SECRET_KEY` and `_REGION`. Tests share it through a
//! bucket of their own each ([`S3Server::unique_bucket`]), and reach it directly ([`S3Server::bucket`]) to do
//! what a misbehaving client or store would.

use s3::creds::Credentials;
use s3::{Bucket, BucketConfiguration, Region};
use std::net::{SocketAddr, ToSocketAddrs};

#[derive(Debug, Clone)]
pub struct S3Server {
    /// `http://host:port`, without a trailing slash.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl S3Server {
    /// The server `scripts/test` started; panics naming it when the variables are not set.
    pub fn from_env() -> Self {
        Self {
            endpoint: crate::required_env("ALMONER_TEST_S3_ENDPOINT").trim_end_matches('/').to_owned(),
            access_key: crate::required_env("ALMONER_TEST_S3_ACCESS_KEY"),
            secret_key: crate::required_env("ALMONER_TEST_S3_SECRET_KEY"),
            region: crate::required_env("ALMONER_TEST_S3_REGION"),
        }
    }

    /// The server's socket address, e.g. to put a [`crate::proxy::TcpProxy`] in front of it.
    pub fn addr(&self) -> SocketAddr {
        let host_port = self.endpoint.split("://").nth(1).unwrap_or(&self.endpoint);
        host_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve the S3 endpoint {}", self.endpoint))
    }

    /// The same server reached through `addr` (a proxy).
    pub fn through(&self, addr: SocketAddr) -> Self {
        Self { endpoint: format!("http://{addr}"), ..self.clone() }
    }

    /// A fresh bucket name for one test (not created: the service under test creates it).
    pub fn unique_bucket() -> String {
        format!("almoner-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
    }

    /// A client of bucket `name`, path-style, for doing directly what the service would not.
    pub fn bucket(&self, name: &str) -> Box<Bucket> {
        let region = Region::Custom { region: self.region.clone(), endpoint: self.endpoint.clone() };
        let credentials = Credentials::new(Some(&self.access_key), Some(&self.secret_key), None, None, None)
            .expect("static S3 credentials");
        Bucket::new(name, region, credentials).expect("an S3 bucket client").with_path_style()
    }

    /// Creates bucket `name` (for tests of other services that keep files through storage).
    pub async fn create_bucket(&self, name: &str) {
        let region = Region::Custom { region: self.region.clone(), endpoint: self.endpoint.clone() };
        let credentials = Credentials::new(Some(&self.access_key), Some(&self.secret_key), None, None, None)
            .expect("static S3 credentials");
        Bucket::create_with_path_style(name, region, credentials, BucketConfiguration::private())
            .await
            .unwrap_or_else(|e| panic!("creating test bucket {name}: {e}"));
    }
}
