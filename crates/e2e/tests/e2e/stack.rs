use crate::deployment::{Deployment, StartReplica};
use almoner_config::{AmqpSettings, AuthSettings, ServerSettings, TelemetrySettings};
use almoner_testkit::balancer::ServiceBalancer;
use almoner_testkit::broker;
use almoner_testkit::db::TestDatabase;
use almoner_testkit::gateway::Gateway;
use almoner_testkit::gateway::GatewayPort;
use almoner_testkit::gateway::S3_UPSTREAM;
use almoner_testkit::proxy::TcpProxy;
use almoner_testkit::s3::S3Server;
use almoner_testkit::smtp::SmtpSink;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util_shim::CancelOnDrop;

/// identity, fundraising, rollup and storage (and webhook-ingest and messaging, when [`Options`] asks) sharing one
/// fresh database (a schema each) and one broker namespace, behind the gateway; storage keeps its files in a bucket
/// of its own on the test S3 server, which the gateway's `/s3/` reaches.
pub struct Stack {
    pub gateway: Gateway,
    /// Each service's name and port on 127.0.0.1, for another gateway in front of the same services (the S3
    /// server behind `/s3/`, the gateway's [`S3_UPSTREAM`], is not among them).
    pub upstreams: Vec<(&'static str, u16)>,
    /// storage's bucket on the test S3 server.
    pub bucket: String,
    pub client: reqwest::Client,
    pub admin: identity::bootstrap::Bootstrapped,
    pub identity_pool: almoner_db::Pool,
    /// fundraising's own address, bypassing the gateway (for bulk writes that should not measure nginx).
    pub fundraising_url: String,
    /// The broker namespace every service uses, reached directly.
    pub amqp: AmqpSettings,
    /// Present when started with [`Options::proxied_amqp`].
    pub broker_proxies: Option<BrokerProxies>,
    pub db: TestDatabase,
    stop: Vec<CancelOnDrop>,
    /// With [`Options::replicated`]: every service's replicas and balancer, in the order they started.
    pub deployments: Vec<Deployment>,
    /// fundraising, apart from the rest: [`Stack::kill_fundraising`] and [`Stack::restart_fundraising`] (not with
    /// [`Options::replicated`]).
    fundraising: Option<Restartable<fundraising::configuration::Settings>>,
    messaging: Option<Restartable<messaging::configuration::Settings>>,
    /// With [`Options::console`]: the SMTP sink identity mails sign-in links to, and its messages over HTTP.
    pub mailbox: Option<Mailbox>,
}

/// The relay identity mails through in a [`Options::console`] stack.
pub struct Mailbox {
    pub sink: SmtpSink,
    /// `GET <url>/messages?to=<address>` lists an address's messages as JSON (`SmtpSink::serve_http`).
    pub url: String,
}

/// fundraising's settings (to start it again the same way) and the running instance, if any.
/// A service the tests stop and start again: its settings (with the port it first bound, so the gateway finds it
/// where it was) and, while it runs, its stop token and task.
struct Restartable<S> {
    settings: S,
    running: Option<(CancelOnDrop, tokio::task::JoinHandle<Result<(), String>>)>,
}

impl<S> Restartable<S> {
    /// Stops the service and waits (10 s at most) for its task to end.
    async fn stop(&mut self, name: &str) {
        let (stop, run) = self.running.take().unwrap_or_else(|| panic!("{name} is running"));
        drop(stop);
        match tokio::time::timeout(Duration::from_secs(10), run).await {
            Ok(Ok(result)) => result.unwrap_or_else(|e| panic!("{name} stops without an error: {e}")),
            Ok(Err(e)) => panic!("{name}'s task failed: {e}"),
            Err(_) => panic!("{name} did not stop within 10 s"),
        }
    }
}

/// Waits for a stopped service's port to be free again (actix's own thread closes the listener soon after).
async fn wait_port_free(port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(tokio::time::Instant::now() < deadline, "port {port} still taken 10 s after the stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How to start the stack.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// Route fundraising's, rollup's (and webhook-ingest's) AMQP connections each through its own [`TcpProxy`],
    /// so a test can cut them from the broker (identity keeps a direct connection).
    pub proxied_amqp: bool,
    /// Gateway settings other than production's (`almoner_testkit::gateway::DEFAULT_SETTINGS`), e.g. a higher
    /// rate limit.
    pub gateway_settings: &'static [(&'static str, &'static str)],
    /// Also start webhook-ingest (routed at `/webhooks/` and `/api/webhook-ingest/`). Off by default, so that the
    /// other tests start no more than they use.
    pub webhook_ingest: bool,
    /// GoCardless's API for fundraising (live and sandbox alike), e.g. a fake's; GoCardless's own when `None`.
    pub gocardless_base_url: Option<&'static str>,
    /// webhook-ingest's deliveries per endpoint per minute; `None` is 1,000. A flood needs more.
    pub webhook_rate_limit_per_minute: Option<u64>,
    /// Staff sign-in as the console does it: identity mails links to an SMTP sink ([`Stack::mailbox`]), links open
    /// the gateway's own address (its port is reserved before identity starts, so identity's `sign_in.console_url`
    /// can name it), and an address may ask for many links (browser tests sign in afresh in each test). The gateway
    /// serves the console build of `ALMONER_TEST_CONSOLE_DIST` either way.
    pub console: bool,
    /// Also start messaging (routed at `/api/messaging/`). Off by default, like webhook-ingest.
    pub messaging: bool,
    /// Twilio's API for messaging's sender, e.g. a fake's; nowhere (every call refused) when `None`.
    pub twilio_base_url: Option<&'static str>,
    /// Run every service as Kubernetes does: [`REPLICAS`] replicas behind a balancer each (a Service whose endpoints
    /// follow the replicas' `/ready`), with production's graceful shutdown (a drain before the listener closes),
    /// for rolling restarts ([`Stack::deployments`]). The gateway routes to the balancers.
    pub replicated: bool,
}

/// Replicas of each service with [`Options::replicated`]: the production overlays' minimum.
pub const REPLICAS: usize = 2;

/// The key fundraising seals provider tokens with in these tests: base64 of 32 bytes of 43.
const TEST_PROVIDERS_SECRETS_KEY: &str = "KysrKysrKysrKysrKysrKysrKysrKysrKysrKysrKys=";

/// The key webhook-ingest seals endpoint secrets with in these tests: base64 of 32 bytes of 42.
const TEST_SECRETS_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// The proxies between the services and the broker.
pub struct BrokerProxies {
    pub fundraising: TcpProxy,
    pub rollup: TcpProxy,
    /// Present when webhook-ingest runs ([`Options::webhook_ingest`]).
    pub webhook_ingest: Option<TcpProxy>,
}

impl BrokerProxies {
    /// Cuts every service from the broker at once (returning once every connection is closed), as a broker
    /// restart does; new connections are refused until [`BrokerProxies::restore_all`].
    pub async fn cut_all(&self) {
        let webhook_ingest = async {
            if let Some(proxy) = &self.webhook_ingest {
                proxy.cut().await;
            }
        };
        tokio::join!(self.fundraising.cut(), self.rollup.cut(), webhook_ingest);
    }

    pub fn restore_all(&self) {
        self.fundraising.restore();
        self.rollup.restore();
        if let Some(proxy) = &self.webhook_ingest {
            proxy.restore();
        }
    }
}

fn server_settings(replicated: bool) -> ServerSettings {
    match replicated {
        // One worker each: the stack runs twelve replicas. A drain of 2 s covers the balancers' 200 ms probes.
        true => ServerSettings { workers: 1, shutdown_deadline_secs: 20, shutdown_drain_secs: 2, ..Default::default() },
        false => ServerSettings { workers: 2, ..ServerSettings::default() },
    }
}

/// Starts each service as the stack's options say: once, on a port of its own, or as a [`Deployment`] of
/// [`REPLICAS`] replicas behind a balancer.
struct Launcher {
    replicated: bool,
    stop: Vec<CancelOnDrop>,
    deployments: Vec<Deployment>,
}

impl Launcher {
    /// Starts `name` with `settings` and returns the port the gateway routes it to (the service's, or its
    /// balancer's); `balancer` is one started earlier, when the stack had to know the port in advance.
    async fn launch<S, F, Fut, E>(
        &mut self,
        name: &'static str,
        settings: S,
        build: F,
        balancer: Option<ServiceBalancer>,
    ) -> u16
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<almoner_service::Application, E>> + Send + 'static,
        E: std::fmt::Debug,
    {
        if !self.replicated {
            let app = build(settings).await.unwrap_or_else(|e| panic!("{name} starts: {e:?}"));
            let port = app.port();
            self.stop.push(CancelOnDrop(app.shutdown_token()));
            tokio::spawn(app.run_until_stopped());
            return port;
        }
        let build = Arc::new(build);
        let start: StartReplica = Arc::new(move || {
            let (build, settings) = (build.clone(), settings.clone());
            Box::pin(async move { build(settings).await.unwrap_or_else(|e| panic!("{name} starts: {e:?}")) })
        });
        let balancer = match balancer {
            Some(balancer) => balancer,
            None => ServiceBalancer::start(Deployment::probe()).await,
        };
        let deployment = Deployment::start(name, balancer, REPLICAS, start).await;
        let port = deployment.port();
        self.deployments.push(deployment);
        port
    }
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Stack {
        almoner_testkit::telemetry::init();
        let server = || server_settings(options.replicated);
        let db = TestDatabase::create().await;
        let amqp = almoner_testkit::broker::amqp_settings();
        let broker_proxies = if options.proxied_amqp {
            let upstream = broker::broker_addr(&amqp);
            Some(BrokerProxies {
                fundraising: TcpProxy::start(upstream).await,
                rollup: TcpProxy::start(upstream).await,
                webhook_ingest: match options.webhook_ingest {
                    true => Some(TcpProxy::start(upstream).await),
                    false => None,
                },
            })
        } else {
            None
        };
        let amqp_of = |proxy: Option<&TcpProxy>| match proxy {
            Some(proxy) => broker::through(&amqp, proxy.addr()),
            None => amqp.clone(),
        };
        let mut launcher = Launcher { replicated: options.replicated, stop: Vec::new(), deployments: Vec::new() };

        // The console's sign-in: the gateway's address is known before identity starts, and mail goes to a sink.
        let gateway_port = match options.console {
            true => Some(GatewayPort::reserve().expect("a port for the gateway")),
            false => None,
        };
        let mailbox = match options.console {
            true => {
                let mut sink = SmtpSink::start().await;
                let url = sink.serve_http();
                Some(Mailbox { sink, url })
            }
            false => None,
        };
        let sign_in = match &gateway_port {
            Some(port) => identity::configuration::SignInSettings {
                console_url: port.url(),
                max_links_per_address: 1000,
                max_links_per_ip: 10_000,
                ..Default::default()
            },
            None => Default::default(),
        };

        let identity_settings = identity::configuration::Settings {
            server: server(),
            database: db.database_settings(),
            amqp: amqp.clone(),
            redis: Some(almoner_testkit::redis::redis_settings()),
            telemetry: TelemetrySettings::default(),
            auth: AuthSettings::default(),
            tokens: identity::configuration::TokenSettings {
                rate_limit_prefix: almoner_testkit::redis::unique_prefix(),
                ..Default::default()
            },
            mail: mailbox
                .as_ref()
                .map(|mailbox| identity::mailer::MailSettings { port: mailbox.sink.port(), ..Default::default() }),
            sign_in,
            widget: identity::configuration::WidgetSettings {
                secrets_key: Some(TEST_SECRETS_KEY.to_owned().into()),
                ..Default::default()
            },
        };
        let identity_port =
            launcher.launch("identity", identity_settings.clone(), identity::startup::build, None).await;
        let auth = AuthSettings {
            jwks_url: Some(format!("http://127.0.0.1:{identity_port}/.well-known/jwks.json")),
            ..Default::default()
        };

        // Held until storage binds it, so that nothing started meanwhile (the gateway's own free-port probe
        // included) can take it; replicated, storage's balancer is that port.
        let (storage_reservation, storage_balancer) = match options.replicated {
            true => (None, Some(ServiceBalancer::start(Deployment::probe()).await)),
            false => (Some(std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")), None),
        };
        let storage_port = match (&storage_reservation, &storage_balancer) {
            (Some(reservation), _) => reservation.local_addr().expect("its address").port(),
            (None, balancer) => balancer.as_ref().expect("storage's balancer").addr().port(),
        };
        let fundraising_settings = fundraising::configuration::Settings {
            server: match options.replicated {
                true => server(),
                // No grace on stopping: stopping it is a kill (see `kill_fundraising`).
                false => ServerSettings { shutdown_deadline_secs: 0, ..server() },
            },
            database: db.database_settings(),
            amqp: amqp_of(broker_proxies.as_ref().map(|p| &p.fundraising)),
            telemetry: TelemetrySettings::default(),
            auth: auth.clone(),
            intake: {
                let defaults = fundraising::configuration::IntakeSettings::default();
                fundraising::configuration::IntakeSettings {
                    providers_secrets_key: Some(TEST_PROVIDERS_SECRETS_KEY.to_owned().into()),
                    gocardless_base_url: options
                        .gocardless_base_url
                        .map_or(defaults.gocardless_base_url.clone(), str::to_owned),
                    gocardless_sandbox_base_url: options
                        .gocardless_base_url
                        .map_or(defaults.gocardless_sandbox_base_url.clone(), str::to_owned),
                    // No JustGiving here: a pull (POST /v1/justgiving/pages/{id}/pull) fails at once, connection
                    // refused, and is recorded on the page, rather than reaching the real API.
                    justgiving_base_url: "http://127.0.0.1:9".into(),
                    ..defaults
                }
            },
            // storage directly, as in a cluster (not through the gateway).
            storage: fundraising::configuration::StorageSettings {
                url: format!("http://127.0.0.1:{storage_port}"),
                ..Default::default()
            },
        };
        let (fundraising, fundraising_port) = match options.replicated {
            true => {
                (None, launcher.launch("fundraising", fundraising_settings, fundraising::startup::build, None).await)
            }
            false => {
                let app = fundraising::startup::build(fundraising_settings.clone()).await.expect("fundraising starts");
                let port = app.port();
                let mut fundraising = Restartable { settings: fundraising_settings, running: Some(run(app)) };
                // Started again on the same port, so the gateway finds it where it was.
                fundraising.settings.server.port = port;
                (Some(fundraising), port)
            }
        };

        let rollup_settings = rollup::configuration::Settings {
            server: server(),
            database: db.database_settings(),
            amqp: amqp_of(broker_proxies.as_ref().map(|p| &p.rollup)),
            telemetry: TelemetrySettings::default(),
            auth: auth.clone(),
            projection: Default::default(),
            summaries: Default::default(),
        };
        let rollup_port = launcher.launch("rollup", rollup_settings, rollup::startup::build, None).await;

        let mut upstreams =
            vec![("identity", identity_port), ("fundraising", fundraising_port), ("rollup", rollup_port)];
        if options.webhook_ingest {
            let settings = webhook_ingest::configuration::Settings {
                server: server(),
                database: db.database_settings(),
                amqp: amqp_of(broker_proxies.as_ref().and_then(|p| p.webhook_ingest.as_ref())),
                telemetry: TelemetrySettings::default(),
                auth: auth.clone(),
                redis: almoner_testkit::redis::redis_settings(),
                webhooks: webhook_ingest::configuration::WebhookSettings {
                    body_limit_bytes: 256 * 1024,
                    signature_tolerance_secs: 300,
                    // Twilio signs the URL it posts to: with the gateway's port known, that is the gateway's.
                    public_base_url: gateway_port.as_ref().map_or_else(|| "https://almoner.test".into(), |p| p.url()),
                    rate_limit_per_endpoint: options.webhook_rate_limit_per_minute.unwrap_or(1000),
                    rate_limit_window_secs: 60,
                    // Nothing listens there: these tests make no PayPal endpoint.
                    paypal_base_url: "http://127.0.0.1:9".into(),
                    paypal_check: Default::default(),
                    paypal_trust_roots: None,
                    paypal_cert_url_prefixes: vec![],
                    secrets_key: TEST_SECRETS_KEY.to_owned().into(),
                    rate_limit_prefix: almoner_testkit::redis::unique_prefix(),
                    store_writers: 2,
                    store_max_batch: 64,
                },
            };
            let port = launcher.launch("webhook-ingest", settings, webhook_ingest::startup::build, None).await;
            upstreams.push(("webhook-ingest", port));
        }
        let mut messaging = None;
        if options.messaging {
            let settings = messaging::configuration::Settings {
                server: server(),
                database: db.database_settings(),
                amqp: amqp.clone(),
                telemetry: TelemetrySettings::default(),
                auth: auth.clone(),
                // Twilio nowhere unless a test gives one: a campaign of a tenant given an account (schemathesis
                // makes one) is tried and refused locally, never sent.
                sms: messaging::configuration::SmsSettings {
                    twilio_base_url: options.twilio_base_url.unwrap_or("http://127.0.0.1:9").into(),
                    secrets_key: Some(TEST_SECRETS_KEY.to_owned().into()),
                    // Short links through the gateway, when its address is known before it starts.
                    links_base_url: gateway_port.as_ref().map(|p| p.url()),
                    ..Default::default()
                },
                conversations: Default::default(),
                // Attachments go to storage directly, as in a cluster.
                storage: messaging::configuration::StorageSettings {
                    url: format!("http://127.0.0.1:{storage_port}"),
                    ..Default::default()
                },
            };
            let port = match options.replicated {
                true => launcher.launch("messaging", settings, messaging::startup::build, None).await,
                false => {
                    let app = messaging::startup::build(settings.clone()).await.expect("messaging starts");
                    let port = app.port();
                    let mut restartable = Restartable { settings, running: Some(run(app)) };
                    // Started again on the same port, so the gateway finds it where it was.
                    restartable.settings.server.port = port;
                    messaging = Some(restartable);
                    port
                }
            };
            upstreams.push(("messaging", port));
        }
        // storage hands out links through the gateway's /s3/, and the gateway must know storage's port: the port
        // was chosen first (fundraising calls storage there), then the gateway starts, then storage on that port
        // with the gateway's address.
        upstreams.push(("storage", storage_port));
        let s3 = S3Server::from_env();
        let s3_port = s3.addr().port();
        let mut routed = upstreams.clone();
        routed.push((S3_UPSTREAM, s3_port));
        let gateway = match gateway_port {
            Some(port) => port.start(&routed, options.gateway_settings).await,
            None => Gateway::start_with(&routed, options.gateway_settings).await,
        }
        .expect("gateway starts");
        let bucket = S3Server::unique_bucket();
        drop(storage_reservation);
        let storage_settings = storage::configuration::Settings {
            // Replicated, each replica on a port of its own behind the balancer.
            server: ServerSettings { port: if options.replicated { 0 } else { storage_port }, ..server() },
            database: db.database_settings(),
            amqp: amqp.clone(),
            telemetry: TelemetrySettings::default(),
            auth: auth.clone(),
            s3: storage::configuration::S3Settings {
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                bucket: bucket.clone(),
                access_key: secrecy::SecretString::from(s3.access_key.clone()),
                secret_key: secrecy::SecretString::from(s3.secret_key.clone()),
                path_style: true,
                public_url: Some(gateway.url("/s3")),
                create_bucket: true,
                request_timeout_secs: 60,
            },
            uploads: Default::default(),
            policy: Default::default(),
        };
        launcher.launch("storage", storage_settings, storage::startup::build, storage_balancer).await;
        let identity_pool = almoner_db::Pool::new(&identity_settings.database, identity::db::SCHEMA).unwrap();
        let admin = identity::bootstrap::bootstrap(&identity_pool, "Test Charity").await.expect("bootstrap");
        let client = reqwest::Client::new();
        for &(service, _) in &upstreams {
            wait_ready(&client, &format!("{}/ready/{service}", gateway.base_url)).await;
        }
        Stack {
            gateway,
            upstreams,
            bucket,
            client,
            admin,
            identity_pool,
            fundraising_url: format!("http://127.0.0.1:{fundraising_port}"),
            amqp,
            broker_proxies,
            db,
            stop: launcher.stop,
            deployments: launcher.deployments,
            fundraising,
            messaging,
            mailbox,
        }
    }

    /// Stops fundraising abruptly, as a killed process: first its broker connection goes (when proxied), so the
    /// broker takes back every delivery it had not acknowledged, then the service stops without grace (shutdown
    /// deadline 0: consumers, relay and requests in flight are abandoned, their transactions rolled back). Its
    /// HTTP port is closed when this returns. webhook-ingest keeps accepting deliveries meanwhile: it needs only
    /// PostgreSQL, and the broker keeps what it publishes in fundraising's durable queue.
    pub async fn kill_fundraising(&mut self) {
        let fundraising = self.fundraising.as_mut().expect("fundraising runs alone (not replicated)");
        assert!(fundraising.running.is_some(), "fundraising is running");
        if let Some(proxies) = &self.broker_proxies {
            proxies.fundraising.cut().await;
        }
        fundraising.stop("fundraising").await;
    }

    /// Stops messaging (its live streams end) and starts it again on the same port with the same settings; returns
    /// once it is ready through the gateway.
    pub async fn restart_messaging(&mut self) {
        let messaging = self.messaging.as_mut().expect("the stack runs messaging");
        messaging.stop("messaging").await;
        wait_port_free(messaging.settings.server.port).await;
        let app = messaging::startup::build(messaging.settings.clone()).await.expect("messaging restarts");
        messaging.running = Some(run(app));
        wait_ready(&self.client, &format!("{}/ready/messaging", self.gateway.base_url)).await;
    }

    /// Starts fundraising again after [`Stack::kill_fundraising`]: same database, broker namespace, settings and
    /// port; returns once it is ready through the gateway.
    pub async fn restart_fundraising(&mut self) {
        let fundraising = self.fundraising.as_mut().expect("fundraising runs alone (not replicated)");
        assert!(fundraising.running.is_none(), "fundraising is still running");
        if let Some(proxies) = &self.broker_proxies {
            proxies.fundraising.restore();
        }
        wait_port_free(fundraising.settings.server.port).await;
        let app = fundraising::startup::build(fundraising.settings.clone()).await.expect("fundraising restarts");
        fundraising.running = Some(run(app));
        wait_ready(&self.client, &format!("{}/ready/fundraising", self.gateway.base_url)).await;
    }

    /// An access token for the bootstrapped admin key (every scope), from identity through the gateway.
    pub async fn admin_token(&self) -> String {
        let response = self
            .client
            .post(format!("{}/api/identity/v1/oauth/token", self.gateway.base_url))
            .form(&[("grant_type", "client_credentials"), ("client_secret", self.admin.api_key.as_str())])
            .send()
            .await
            .expect("token request sent");
        assert_eq!(response.status(), 200, "token request");
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().expect("an access token").to_owned()
    }

    /// Stops the services' background work and deletes the namespace's queues and exchanges from the shared
    /// broker. With proxies, cutting them first guarantees no service reconnects and declares them again.
    pub async fn clean_up(mut self) {
        self.stop.clear();
        self.deployments.clear();
        if let Some(fundraising) = self.fundraising.as_mut() {
            fundraising.running = None;
        }
        if let Some(messaging) = self.messaging.as_mut() {
            messaging.running = None;
        }
        match &self.broker_proxies {
            Some(proxies) => proxies.cut_all().await,
            // Give the consumer a moment to see its cancellation before its queue goes away.
            None => tokio::time::sleep(Duration::from_millis(300)).await,
        }
        // Quorum queues outlive their consumers: every consumer's queues go, or they pile up in the broker.
        let specs = [
            rollup::worker::projection_spec(),
            fundraising::worker::tenant_settings::spec(),
            fundraising::worker::payments::spec(),
            fundraising::worker::sms_consent::spec(),
            identity::worker::reply_mail::spec(),
            messaging::worker::tenant_settings::spec(),
            messaging::worker::fundraising_events::spec(),
            messaging::worker::twilio_events::spec(),
        ];
        for spec in &specs {
            let _ = almoner_bus::topology::delete_consumer(&self.amqp, spec).await;
        }
        let _ = almoner_bus::topology::delete_exchanges(&self.amqp).await;
    }
}

/// Runs a service until its token is cancelled (or the token is dropped).
fn run(app: almoner_service::Application) -> (CancelOnDrop, tokio::task::JoinHandle<Result<(), String>>) {
    let stop = CancelOnDrop(app.shutdown_token());
    (stop, tokio::spawn(async move { app.run_until_stopped().await.map_err(|e| format!("{e:#}")) }))
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if client.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let last = match client.get(url).send().await {
                Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => format!("{e:#}"),
            };
            panic!("{url} not ready: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

mod tokio_util_shim {
    /// Stops a service's background work when the stack is dropped.
    pub struct CancelOnDrop(pub tokio_util::sync::CancellationToken);

    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
}
