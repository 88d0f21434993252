//! The identity binary: the shared commands (`serve`, `migrate`, `dead-letters`) and its own `bootstrap` and
//! `rotate-signing-key` and `sign-in-link`.

use clap::Subcommand;
use identity::configuration::Settings;
use std::process::ExitCode;

almoner_service::fast_allocator!();

struct Identity;

#[derive(Subcommand)]
enum Command {
    /// Create a tenant and print its first admin API key.
    Bootstrap {
        /// The tenant's name, e.g. "Demo Charity".
        #[arg(long)]
        tenant: String,
        /// Print one line of JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create a new token signing key and retire the old ones (they stay published until their tokens expire).
    RotateSigningKey,
    /// Print a sign-in link for each tenant an address is staff of, without mailing it (development, or a
    /// member whose mail does not arrive). Each link works once, for sign_in.link_ttl_secs.
    SignInLink {
        #[arg(long)]
        email: String,
    },
}

impl almoner_service::Service for Identity {
    const NAME: &'static str = "identity";
    const ABOUT: &'static str = "Almoner identity service";
    const SCHEMA: &'static str = identity::db::SCHEMA;
    const MIGRATIONS: &'static [almoner_db::Migration] = identity::db::MIGRATIONS;
    type Settings = Settings;
    type Command = Command;

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    async fn build(settings: Settings) -> anyhow::Result<almoner_service::Application> {
        identity::startup::build(settings).await
    }

    async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
        let pool = almoner_db::Pool::new(&settings.database, identity::db::SCHEMA)?;
        match command {
            Command::Bootstrap { tenant, json } => {
                let created = identity::bootstrap::bootstrap(&pool, &tenant).await?;
                if json {
                    println!("{}", serde_json::to_string(&created)?);
                } else {
                    println!("Tenant:     {} ({})", created.tenant_name, created.tenant_id);
                    println!("API key id: {}", created.api_key_id);
                    println!("API key:    {}", created.api_key);
                    println!("Store the key now: it is not shown again.");
                }
            }
            Command::SignInLink { email } => {
                let email = almoner_types::Email::parse(email.trim())
                    .map_err(|e| anyhow::anyhow!("--email {e}"))?
                    .to_string()
                    .to_lowercase();
                let links = identity::sign_in::make_links(&pool, &settings.sign_in, &email).await?;
                if links.is_empty() {
                    anyhow::bail!("{email} is no tenant's staff");
                }
                // The URLs alone on standard output, one per line, so scripts can take them as they are.
                for link in links {
                    eprintln!(
                        "identity: sign-in link for {} at {}, valid until {}",
                        email, link.tenant_name, link.expires_at
                    );
                    println!("{}", link.url);
                }
            }
            Command::RotateSigningKey => {
                let kid = identity::signing::SigningKeys::rotate(&pool).await?;
                println!("identity: new signing key {kid}; replicas pick it up within tokens.signing_key_refresh_secs");
            }
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    almoner_service::main::<Identity>()
}
