use almoner_bus::{OutgoingMessage, Publisher};
use almoner_config::{AmqpSettings, ServerSettings, TelemetrySettings};
use almoner_events::fundraising::{
    Address, CommunicationPreferences, Donor, DonorUpsertedV1, Fund, FundAllocation, FundUpsertedV1, Gift,
    GiftDeletedV1, GiftStatus, GiftUpsertedV1, Household, HouseholdUpsertedV1, Pledge, PledgeFrequency, PledgeStatus,
    PledgeUpsertedV1, RecurringAgreement, RecurringInterval, RecurringStatus, RecurringUpsertedV1, SoftCredit,
    SoftCreditKind,
};
use almoner_events::identity::TenantUpdatedV1;
use almoner_events::{Envelope, Event};
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::TestDatabase;
use chrono::{NaiveDate, Utc};
use rollup::clock::Clock;
use rollup::configuration::Settings;
use rollup::db::funds::StoredFundTotals;
use rollup::db::households::{StoredHouseholdTotals, StoredHouseholdYear};
use rollup::db::totals::{StoredFiscalYear, StoredPledgePayment, StoredTotals};
use rollup::domain::{FiscalYearStart, FiscalYearTotal};
use serde_json::Value;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The date every test's service believes it is: FY 2025 (April start) began 2025-04-01.
pub fn today() -> NaiveDate {
    date("2025-06-15")
}

pub fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub amqp: AmqpSettings,
    pub pool: almoner_db::Pool,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    pub publisher: Publisher,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let amqp = almoner_testkit::broker::amqp_settings();
    let issuer = TestIssuer::start().await;
    let settings = Settings {
        server: ServerSettings { body_limit_bytes: 64 * 1024, workers: 2, ..ServerSettings::default() },
        database: db.database_settings(),
        amqp: amqp.clone(),
        telemetry: TelemetrySettings::default(),
        auth: issuer.auth_settings(),
        projection: Default::default(),
        summaries: Default::default(),
    };
    let app = rollup::startup::build_with_clock(settings.clone(), Clock::Fixed(today())).await.expect("rollup starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let pool = almoner_db::Pool::new(&settings.database, rollup::db::SCHEMA).unwrap();
    let publisher = Publisher::connect(&amqp, "rollup tests").await.expect("publisher connects");
    TestApp { address, db, amqp, pool, client: almoner_testkit::http_client(), issuer, publisher, shutdown }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn token(&self, tenant: Uuid) -> String {
        self.issuer.token(tenant, &["rollup:read"])
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    /// GET a path as `tenant`, asserting 200.
    pub async fn get_ok(&self, tenant: Uuid, path: &str) -> Value {
        let response = self.get(path, &self.token(tenant)).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn donor(&self, tenant: Uuid, donor: Uuid) -> Value {
        self.get_ok(tenant, &format!("/v1/donors/{donor}")).await
    }

    pub async fn publish<P: Event>(&self, envelope: &Envelope<P>) {
        self.publisher.publish(&OutgoingMessage::from_envelope(envelope, None).unwrap()).await.expect("published");
    }

    pub async fn publish_raw(&self, routing_key: &str, body: &Value) {
        let message = OutgoingMessage {
            message_id: Uuid::new_v4(),
            routing_key: routing_key.to_owned(),
            body: serde_json::to_vec(body).unwrap(),
            traceparent: None,
            tracestate: None,
        };
        self.publisher.publish(&message).await.expect("published");
    }

    /// Waits until the projection has recorded `n` distinct event ids.
    pub async fn wait_processed(&self, n: i64) {
        let client = self.db.admin_client().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let done: i64 = client
                .query_one("SELECT count(*) FROM rollup.processed_events WHERE consumer = 'rollup.projection'", &[])
                .await
                .unwrap()
                .get(0);
            if done >= n {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {done} of {n} events processed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the consumer and removes this test's queues and exchanges from the shared broker.
    pub async fn clean_up(self) {
        self.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = almoner_bus::topology::delete_consumer(&self.amqp, &rollup::worker::projection_spec()).await;
        let _ = almoner_bus::topology::delete_exchanges(&self.amqp).await;
    }
}

/// A gift's whole state as fundraising would publish it.
#[derive(Debug, Clone)]
pub struct GiftSpec {
    pub id: Uuid,
    pub tenant: Uuid,
    pub donor: Uuid,
    pub revision: i64,
    pub amount_minor: i64,
    pub currency: &'static str,
    pub date: NaiveDate,
    pub status: GiftStatus,
    pub refund_of: Option<Uuid>,
    pub allocations: Vec<(Uuid, i64)>,
    pub soft_credits: Vec<(Uuid, i64)>,
    pub pledge_id: Option<Uuid>,
    pub source: &'static str,
    pub payment_method: Option<&'static str>,
}

impl GiftSpec {
    pub fn new(tenant: Uuid, donor: Uuid, amount_minor: i64, date: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            tenant,
            donor,
            revision: 1,
            amount_minor,
            currency: "GBP",
            date: self::date(date),
            status: GiftStatus::Succeeded,
            refund_of: None,
            allocations: Vec::new(),
            soft_credits: Vec::new(),
            pledge_id: None,
            source: "manual",
            payment_method: None,
        }
    }

    /// Where the gift came from and how it was paid.
    pub fn source(mut self, source: &'static str, payment_method: Option<&'static str>) -> Self {
        self.source = source;
        self.payment_method = payment_method;
        self
    }

    pub fn currency(mut self, currency: &'static str) -> Self {
        self.currency = currency;
        self
    }

    /// Splits the gift across funds: (fund, part).
    pub fn allocate(mut self, parts: &[(Uuid, i64)]) -> Self {
        self.allocations = parts.to_vec();
        self
    }

    /// Soft-credits donors: (donor, share), all `matched`.
    pub fn soft_credit(mut self, shares: &[(Uuid, i64)]) -> Self {
        self.soft_credits = shares.to_vec();
        self
    }

    pub fn pledge(mut self, pledge: Uuid) -> Self {
        self.pledge_id = Some(pledge);
        self
    }

    pub fn status(mut self, status: GiftStatus) -> Self {
        self.status = status;
        self
    }

    pub fn revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }

    /// A refund entry of `self`: a gift of its own, negative, succeeded, with the gift's currency and source (as
    /// fundraising records it).
    pub fn refund(&self, amount_minor: i64, date: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            amount_minor: -amount_minor,
            refund_of: Some(self.id),
            currency: self.currency,
            source: self.source,
            payment_method: self.payment_method,
            ..Self::new(self.tenant, self.donor, 0, date)
        }
    }

    pub fn event(&self) -> Envelope<GiftUpsertedV1> {
        let now = Utc::now();
        Envelope::new(
            self.tenant,
            "fundraising",
            GiftUpsertedV1 {
                gift: Gift {
                    id: self.id,
                    tenant_id: self.tenant,
                    donor_id: self.donor,
                    revision: self.revision,
                    amount_minor: self.amount_minor,
                    currency: self.currency.to_owned(),
                    gift_date: self.date,
                    status: self.status,
                    payment_method: self.payment_method.map(str::to_owned),
                    source: self.source.into(),
                    fund: None,
                    campaign: None,
                    external_reference: None,
                    refund_of: self.refund_of,
                    allocations: self
                        .allocations
                        .iter()
                        .map(|(fund_id, amount_minor)| FundAllocation {
                            fund_id: *fund_id,
                            amount_minor: *amount_minor,
                        })
                        .collect(),
                    soft_credits: self
                        .soft_credits
                        .iter()
                        .map(|(donor_id, amount_minor)| SoftCredit {
                            donor_id: *donor_id,
                            amount_minor: *amount_minor,
                            kind: SoftCreditKind::Matched,
                        })
                        .collect(),
                    pledge_id: self.pledge_id,
                    created_at: now,
                    updated_at: now,
                },
            },
        )
    }

    pub fn deleted(&self, revision: i64) -> Envelope<GiftDeletedV1> {
        Envelope::new(
            self.tenant,
            "fundraising",
            GiftDeletedV1 {
                gift_id: self.id,
                donor_id: self.donor,
                tenant_id: self.tenant,
                revision,
                deleted_at: Utc::now(),
            },
        )
    }
}

pub fn donor_event(tenant: Uuid, donor: Uuid, revision: i64, first: &str, last: &str) -> Envelope<DonorUpsertedV1> {
    member_event(tenant, donor, revision, first, last, None)
}

/// A donor event putting the donor in `household` (or in none).
pub fn member_event(
    tenant: Uuid,
    donor: Uuid,
    revision: i64,
    first: &str,
    last: &str,
    household: Option<Uuid>,
) -> Envelope<DonorUpsertedV1> {
    let now = Utc::now();
    Envelope::new(
        tenant,
        "fundraising",
        DonorUpsertedV1 {
            donor: Donor {
                id: donor,
                tenant_id: tenant,
                revision,
                title: None,
                first_name: Some(first.to_owned()),
                last_name: last.to_owned(),
                email: None,
                phone: None,
                address: Address::default(),
                external_ids: Default::default(),
                communication_preferences: CommunicationPreferences::default(),
                household_id: household,
                created_at: now,
                updated_at: now,
            },
        },
    )
}

pub fn household_event(tenant: Uuid, household: Uuid, revision: i64, name: &str) -> Envelope<HouseholdUpsertedV1> {
    let now = Utc::now();
    Envelope::new(
        tenant,
        "fundraising",
        HouseholdUpsertedV1 {
            household: Household {
                id: household,
                tenant_id: tenant,
                revision,
                name: name.to_owned(),
                created_at: now,
                updated_at: now,
            },
        },
    )
}

pub fn fund_event(tenant: Uuid, fund: Uuid, revision: i64, code: &str, restricted: bool) -> Envelope<FundUpsertedV1> {
    let now = Utc::now();
    Envelope::new(
        tenant,
        "fundraising",
        FundUpsertedV1 {
            fund: Fund {
                id: fund,
                tenant_id: tenant,
                revision,
                code: code.to_owned(),
                name: format!("The {code} fund"),
                restricted,
                archived: false,
                created_at: now,
                updated_at: now,
            },
        },
    )
}

/// A pledge of `amount_minor` GBP over 12 monthly instalments.
pub fn pledge_event(
    tenant: Uuid,
    pledge: Uuid,
    donor: Uuid,
    revision: i64,
    amount_minor: i64,
    status: PledgeStatus,
) -> Envelope<PledgeUpsertedV1> {
    let now = Utc::now();
    Envelope::new(
        tenant,
        "fundraising",
        PledgeUpsertedV1 {
            pledge: Pledge {
                id: pledge,
                tenant_id: tenant,
                donor_id: donor,
                revision,
                amount_minor,
                currency: "GBP".into(),
                frequency: PledgeFrequency::Monthly,
                instalments: 12,
                start_date: date("2025-01-01"),
                status,
                fund_id: None,
                created_at: now,
                updated_at: now,
            },
        },
    )
}

/// A recurring agreement paying `amount_minor` of `currency` every `interval`, through Stripe.
#[allow(clippy::too_many_arguments)]
pub fn recurring_event(
    tenant: Uuid,
    agreement: Uuid,
    donor: Option<Uuid>,
    revision: i64,
    amount_minor: i64,
    currency: &str,
    interval: RecurringInterval,
    status: RecurringStatus,
) -> Envelope<RecurringUpsertedV1> {
    let now = Utc::now();
    Envelope::new(
        tenant,
        "fundraising",
        RecurringUpsertedV1 {
            agreement: RecurringAgreement {
                id: agreement,
                tenant_id: tenant,
                revision,
                donor_id: donor,
                amount_minor,
                currency: currency.into(),
                interval,
                provider: "stripe".into(),
                provider_reference: format!("sub_{}", agreement.simple()),
                status,
                next_expected_date: Some(date("2025-07-01")),
                last_paid_date: Some(date("2025-06-01")),
                created_at: now,
                updated_at: now,
            },
        },
    )
}

pub fn tenant_updated(tenant: Uuid, revision: i64, fiscal_year_start_month: u8) -> Envelope<TenantUpdatedV1> {
    Envelope::new(
        tenant,
        "identity",
        TenantUpdatedV1 {
            tenant_id: tenant,
            revision,
            name: "Test Charity".into(),
            fiscal_year_start_month,
            accounting_period_end: None,
            time_zone: None,
            updated_at: Utc::now(),
        },
    )
}

/// Asserts a problem+json response with `code`.
pub async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body
}

/// A gift's final state, as the counting rules see it.
pub struct CountedGift {
    pub id: Uuid,
    pub donor: Uuid,
    pub currency: &'static str,
    pub amount_minor: i64,
    pub date: NaiveDate,
    pub status: GiftStatus,
    pub is_refund: bool,
    pub deleted: bool,
    /// The household the paying donor is in now.
    pub household: Option<Uuid>,
    /// (fund, part).
    pub allocations: Vec<(Uuid, i64)>,
    /// (credited donor, share).
    pub soft_credits: Vec<(Uuid, i64)>,
    /// The pledge the row pays: its own, or for a refund entry without one, its live refunded gift's.
    pub pledge: Option<Uuid>,
}

/// rollup's counting rules applied to final states directly: live succeeded and refunded rows count as money
/// (refund entries negative); positive rows that are not refund entries count as gifts.
pub fn expected_totals(gifts: &[CountedGift], start: FiscalYearStart) -> (Vec<StoredTotals>, Vec<StoredFiscalYear>) {
    let is_gift = |g: &CountedGift| g.amount_minor > 0 && !g.is_refund;
    let counted =
        gifts.iter().filter(|g| !g.deleted && matches!(g.status, GiftStatus::Succeeded | GiftStatus::Refunded));
    let mut by_donor: BTreeMap<(Uuid, &str), Vec<&CountedGift>> = BTreeMap::new();
    let mut by_year: BTreeMap<(Uuid, &str, i32), (i64, i64)> = BTreeMap::new();
    for g in counted {
        by_donor.entry((g.donor, g.currency)).or_default().push(g);
        let year = by_year.entry((g.donor, g.currency, start.fiscal_year_of(g.date))).or_default();
        year.0 += g.amount_minor;
        year.1 += i64::from(is_gift(g));
    }
    let totals = by_donor
        .into_iter()
        .map(|((donor, currency), rows)| {
            let gifts: Vec<&&CountedGift> = rows.iter().filter(|g| is_gift(g)).collect();
            let first = gifts.iter().min_by_key(|g| (g.date, g.id));
            let last = gifts.iter().max_by_key(|g| (g.date, g.id));
            StoredTotals {
                donor_id: donor,
                currency: currency.to_owned(),
                lifetime_total: rows.iter().map(|g| g.amount_minor).sum(),
                lifetime_count: gifts.len() as i64,
                largest_gift: gifts.iter().map(|g| g.amount_minor).max(),
                smallest_gift: gifts.iter().map(|g| g.amount_minor).min(),
                first_gift_date: first.map(|g| g.date),
                first_gift_amount: first.map(|g| g.amount_minor),
                last_gift_date: last.map(|g| g.date),
                last_gift_amount: last.map(|g| g.amount_minor),
            }
        })
        .collect();
    let years = by_year
        .into_iter()
        .map(|((donor, currency, fiscal_year), (total_minor, count))| StoredFiscalYear {
            donor_id: donor,
            currency: currency.to_owned(),
            year: FiscalYearTotal { fiscal_year, total_minor, count },
        })
        .collect();
    (totals, years)
}

/// The tenant's stored aggregates, in a stable order.
pub async fn stored_totals(pool: &almoner_db::Pool, tenant: Uuid) -> (Vec<StoredTotals>, Vec<StoredFiscalYear>) {
    let tx = pool.tenant_tx(tenant).await.unwrap();
    let result = (
        rollup::db::totals::all_donor_totals(&tx).await.unwrap(),
        rollup::db::totals::all_fiscal_years(&tx).await.unwrap(),
    );
    tx.commit().await.unwrap();
    result
}

/// Every stored aggregate beyond the donors' own totals, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartTotals {
    pub households: Vec<StoredHouseholdTotals>,
    pub household_years: Vec<StoredHouseholdYear>,
    pub funds: Vec<StoredFundTotals>,
    pub soft_credits: Vec<StoredFiscalYear>,
    pub pledges: Vec<StoredPledgePayment>,
}

/// The household, fund, soft-credit and pledge rules applied to final states directly: each counted row once under
/// its paying donor's current household; allocation parts per fund (gifts and their donors with a part); soft
/// shares per credited donor and fiscal year (gifts crediting them); counted money per pledge and currency.
pub fn expected_parts(gifts: &[CountedGift], start: FiscalYearStart) -> PartTotals {
    let is_gift = |g: &CountedGift| g.amount_minor > 0 && !g.is_refund;
    let counted: Vec<&CountedGift> = gifts
        .iter()
        .filter(|g| !g.deleted && matches!(g.status, GiftStatus::Succeeded | GiftStatus::Refunded))
        .collect();
    let mut by_household: BTreeMap<(Uuid, &str), Vec<&CountedGift>> = BTreeMap::new();
    let mut household_years: BTreeMap<(Uuid, &str, i32), (i64, i64)> = BTreeMap::new();
    // Per fund and currency: total, gifts with a part, their paying donors.
    type FundSums = (i64, BTreeSet<Uuid>, BTreeSet<Uuid>);
    let mut funds: BTreeMap<(Uuid, &str), FundSums> = BTreeMap::new();
    let mut soft: BTreeMap<(Uuid, &str, i32), (i64, BTreeSet<Uuid>)> = BTreeMap::new();
    let mut pledges: BTreeMap<(Uuid, &str), (i64, i64)> = BTreeMap::new();
    for g in &counted {
        let year = start.fiscal_year_of(g.date);
        if let Some(household) = g.household {
            by_household.entry((household, g.currency)).or_default().push(g);
            let y = household_years.entry((household, g.currency, year)).or_default();
            y.0 += g.amount_minor;
            y.1 += i64::from(is_gift(g));
        }
        for (fund, part) in &g.allocations {
            let f = funds.entry((*fund, g.currency)).or_default();
            f.0 += part;
            if is_gift(g) {
                f.1.insert(g.id);
                f.2.insert(g.donor);
            }
        }
        for (donor, share) in &g.soft_credits {
            let s = soft.entry((*donor, g.currency, year)).or_default();
            s.0 += share;
            if is_gift(g) {
                s.1.insert(g.id);
            }
        }
        if let Some(pledge) = g.pledge {
            let p = pledges.entry((pledge, g.currency)).or_default();
            p.0 += g.amount_minor;
            p.1 += i64::from(is_gift(g));
        }
    }
    PartTotals {
        households: by_household
            .into_iter()
            .map(|((household, currency), rows)| {
                let gifts: Vec<&&CountedGift> = rows.iter().filter(|g| is_gift(g)).collect();
                let first = gifts.iter().min_by_key(|g| (g.date, g.id));
                let last = gifts.iter().max_by_key(|g| (g.date, g.id));
                StoredHouseholdTotals {
                    household_id: household,
                    currency: currency.to_owned(),
                    lifetime_total: rows.iter().map(|g| g.amount_minor).sum(),
                    lifetime_count: gifts.len() as i64,
                    largest_gift: gifts.iter().map(|g| g.amount_minor).max(),
                    first_gift_date: first.map(|g| g.date),
                    first_gift_amount: first.map(|g| g.amount_minor),
                    last_gift_date: last.map(|g| g.date),
                    last_gift_amount: last.map(|g| g.amount_minor),
                }
            })
            .collect(),
        household_years: household_years
            .into_iter()
            .map(|((household_id, currency, fiscal_year), (total_minor, count))| StoredHouseholdYear {
                household_id,
                currency: currency.to_owned(),
                year: FiscalYearTotal { fiscal_year, total_minor, count },
            })
            .collect(),
        funds: funds
            .into_iter()
            .map(|((fund_id, currency), (total, gifts, donors))| StoredFundTotals {
                fund_id,
                currency: currency.to_owned(),
                total,
                gift_count: gifts.len() as i64,
                donors: donors.len() as i64,
            })
            .collect(),
        soft_credits: soft
            .into_iter()
            .map(|((donor_id, currency, fiscal_year), (total_minor, gifts))| StoredFiscalYear {
                donor_id,
                currency: currency.to_owned(),
                year: FiscalYearTotal { fiscal_year, total_minor, count: gifts.len() as i64 },
            })
            .collect(),
        pledges: pledges
            .into_iter()
            .map(|((pledge_id, currency), (paid, gift_count))| StoredPledgePayment {
                pledge_id,
                currency: currency.to_owned(),
                paid,
                gift_count,
            })
            .collect(),
    }
}

/// The tenant's stored household, fund, soft-credit and pledge aggregates, in a stable order.
pub async fn stored_parts(pool: &almoner_db::Pool, tenant: Uuid) -> PartTotals {
    let tx = pool.tenant_tx(tenant).await.unwrap();
    let parts = PartTotals {
        households: rollup::db::households::all_household_totals(&tx).await.unwrap(),
        household_years: rollup::db::households::all_household_years(&tx).await.unwrap(),
        funds: rollup::db::funds::all_fund_totals(&tx).await.unwrap(),
        soft_credits: rollup::db::totals::all_soft_credits(&tx).await.unwrap(),
        pledges: rollup::db::totals::all_pledge_payments(&tx).await.unwrap(),
    };
    tx.commit().await.unwrap();
    parts
}
