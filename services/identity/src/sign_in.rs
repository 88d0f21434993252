//! Staff sign-in by magic link, and the sessions it opens: what happens, free of HTTP. A link is mailed for each
//! tenant an address is staff of; used once within its lifetime it opens a session, which is an access token (the
//! role's scopes, `sub = staff:<id>`) plus a refresh token that rotates on every use and is revoked at sign-out.
//! It must not decide how tokens travel (cookies, JSON): the routes do.

use crate::configuration::SignInSettings;
use crate::db::{sign_in, staff, tenants};
use crate::domain::{Role, TenantToken};
use crate::mailer::Mailer;
use crate::signing::SigningKeys;
use almoner_db::Pool;
use almoner_http::Claims;
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// What sign-in needs, shared by the routes and the `sign-in-link` command.
#[derive(Clone)]
pub struct SignIn {
    pub pool: Pool,
    pub keys: SigningKeys,
    /// `None` when no relay is configured: links can then only be printed by the command.
    pub mailer: Option<Mailer>,
    pub settings: SignInSettings,
    pub issuer: String,
    pub access_ttl_secs: u64,
}

/// A link made for one membership of an address.
#[derive(Debug, Clone)]
pub struct MadeLink {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub staff_name: String,
    pub email: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// An open session: what the console is given.
#[derive(Debug, Clone)]
pub struct Opened {
    pub access_token: String,
    pub access_ttl_secs: u64,
    pub scopes: Vec<String>,
    pub staff: staff::StaffMember,
    pub tenant_name: String,
    /// The new refresh token, for the cookie.
    pub refresh_token: TenantToken,
    pub session_expires_at: DateTime<Utc>,
}

/// Why a link or refresh token opened nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Unknown, used, expired, revoked, replayed, or its member is gone.
    #[error("the token is not valid")]
    Invalid,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<almoner_db::DbError> for Refused {
    fn from(e: almoner_db::DbError) -> Self {
        Self::Unexpected(e.into())
    }
}

impl SignIn {
    /// Makes and mails the links for `email`. Runs after the request has been answered, so that the answer and
    /// its timing are the same whether or not the address is anybody's.
    pub async fn mail_links(&self, email: String) {
        let Some(mailer) = &self.mailer else {
            tracing::warn!("a sign-in link was asked for, but no mail relay is configured (mail.*)");
            return;
        };
        let links = match make_links(&self.pool, &self.settings, &email).await {
            Ok(links) => links,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "could not make sign-in links");
                return;
            }
        };
        if links.is_empty() {
            tracing::info!("a sign-in link was asked for an address that is no tenant's staff");
        }
        let minutes = self.settings.link_ttl_secs.div_ceil(60);
        for link in links {
            let subject = format!("Sign in to {} on Almoner", link.tenant_name);
            let text = format!(
                "Hello {name},\n\nTo sign in to {tenant} on Almoner, open this link within {minutes} minutes. It \
                 works once:\n\n{url}\n\nIf you did not ask to sign in, ignore this message: nothing happens \
                 until the link is opened.\n",
                name = link.staff_name,
                tenant = link.tenant_name,
                url = link.url,
            );
            let to = format!("{} <{}>", quoted(&link.staff_name), link.email);
            match mailer.send(&to, &subject, &text).await {
                Ok(()) => tracing::info!(tenant_id = %link.tenant_id, "sign-in link mailed"),
                Err(e) => tracing::error!(tenant_id = %link.tenant_id, error = format!("{e:#}"),
                    "could not mail a sign-in link"),
            }
        }
    }

    /// Uses a link once and opens a session.
    #[tracing::instrument(skip_all, fields(tenant_id = %token.tenant_id(), staff_id = tracing::field::Empty))]
    pub async fn redeem(&self, token: &TenantToken) -> Result<Opened, Refused> {
        let tx = self.pool.tenant_tx(token.tenant_id()).await?;
        let staff_id = sign_in::use_link(&tx, &token.hash()).await?.ok_or(Refused::Invalid)?;
        tracing::Span::current().record("staff_id", tracing::field::display(staff_id));
        let member = staff::get(&tx, staff_id).await?.ok_or(Refused::Invalid)?;
        let tenant = tenants::current(&tx).await?.context("the link's tenant")?;
        sign_in::delete_ended_sessions(&tx, staff_id).await?;
        let refresh_token = TenantToken::generate(token.tenant_id());
        let expires_at = Utc::now() + seconds(self.settings.session_ttl_secs);
        sign_in::insert_session(&tx, Uuid::now_v7(), staff_id, &refresh_token.hash(), expires_at).await?;
        tx.commit().await?;
        tracing::info!("staff signed in");
        Ok(self.open(member, tenant.name, refresh_token, expires_at)?)
    }

    /// Swaps a refresh token for a new access token and refresh token. The member's current role decides the
    /// scopes, so a role change takes effect at the next refresh.
    #[tracing::instrument(skip_all, fields(tenant_id = %token.tenant_id(), staff_id = tracing::field::Empty))]
    pub async fn refresh(&self, token: &TenantToken) -> Result<Opened, Refused> {
        let tx = self.pool.tenant_tx(token.tenant_id()).await?;
        let session = match sign_in::present(&tx, &token.hash()).await? {
            sign_in::Presented::Current(session) => session,
            sign_in::Presented::Replayed { session_id, staff_id } => {
                tx.commit().await?;
                tracing::warn!(%session_id, %staff_id, "a replaced refresh token was presented: session revoked");
                return Err(Refused::Invalid);
            }
            sign_in::Presented::Invalid => return Err(Refused::Invalid),
        };
        tracing::Span::current().record("staff_id", tracing::field::display(session.staff_id));
        let member = staff::get(&tx, session.staff_id).await?.ok_or(Refused::Invalid)?;
        let tenant = tenants::current(&tx).await?.context("the session's tenant")?;
        let refresh_token = TenantToken::generate(token.tenant_id());
        sign_in::rotate(&tx, session.id, &refresh_token.hash()).await?;
        tx.commit().await?;
        Ok(self.open(member, tenant.name, refresh_token, session.expires_at)?)
    }

    /// Ends the session a refresh token belongs to (current or just replaced); nothing for any other token.
    #[tracing::instrument(skip_all, fields(tenant_id = %token.tenant_id()))]
    pub async fn sign_out(&self, token: &TenantToken) -> anyhow::Result<()> {
        let tx = self.pool.tenant_tx(token.tenant_id()).await?;
        match sign_in::present(&tx, &token.hash()).await? {
            sign_in::Presented::Current(session) => {
                sign_in::revoke(&tx, session.id, "signed_out").await?;
                tracing::info!(session_id = %session.id, "staff signed out");
            }
            // Presenting the replaced token has revoked the session already.
            sign_in::Presented::Replayed { .. } | sign_in::Presented::Invalid => {}
        }
        tx.commit().await?;
        Ok(())
    }

    fn open(
        &self,
        member: staff::StaffMember,
        tenant_name: String,
        refresh_token: TenantToken,
        session_expires_at: DateTime<Utc>,
    ) -> anyhow::Result<Opened> {
        let role = Role::parse(&member.role).map_err(|e| anyhow::anyhow!("stored role {:?}: {e}", member.role))?;
        let scopes: Vec<String> = role.scopes().into_iter().map(str::to_owned).collect();
        // The access token never outlives the session.
        let now = Utc::now();
        let ttl = self.access_ttl_secs.min(u64::try_from((session_expires_at - now).num_seconds()).unwrap_or(0)).max(1);
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: format!("staff:{}", member.id),
            tid: member.tenant_id,
            scope: scopes.join(" "),
            iat,
            nbf: iat,
            exp: iat + i64::try_from(ttl).unwrap_or(900),
            jti: Uuid::now_v7(),
            origin: None,
        };
        let access_token = self.keys.sign(&claims)?;
        Ok(Opened {
            access_token,
            access_ttl_secs: ttl,
            scopes,
            staff: member,
            tenant_name,
            refresh_token,
            session_expires_at,
        })
    }
}

/// Makes a link for every tenant `email` (lower case) is staff of; none for an address that is nobody's. Needs no
/// signing key, so the `sign-in-link` command calls it alone.
#[tracing::instrument(skip_all, fields(memberships = tracing::field::Empty))]
pub async fn make_links(pool: &Pool, settings: &SignInSettings, email: &str) -> anyhow::Result<Vec<MadeLink>> {
    let lookup = pool.system_tx().await?;
    let memberships = sign_in::memberships(&lookup, &staff::address_hash(email)).await?;
    lookup.commit().await?;
    tracing::Span::current().record("memberships", memberships.len());
    let mut links = Vec::with_capacity(memberships.len());
    for (tenant_id, staff_id) in memberships {
        let tx = pool.tenant_tx(tenant_id).await?;
        let (Some(member), Some(tenant)) = (staff::get(&tx, staff_id).await?, tenants::current(&tx).await?) else {
            continue;
        };
        sign_in::delete_expired_links(&tx, staff_id).await?;
        let token = TenantToken::generate(tenant_id);
        let expires_at = Utc::now() + seconds(settings.link_ttl_secs);
        sign_in::insert_link(&tx, &token.hash(), staff_id, expires_at).await?;
        tx.commit().await?;
        links.push(MadeLink {
            tenant_id,
            tenant_name: tenant.name,
            staff_name: member.name,
            email: member.email,
            url: format!("{}/sign-in/callback#token={}", settings.console_url.trim_end_matches('/'), token.expose()),
            expires_at,
        });
    }
    Ok(links)
}

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// A display name as an RFC 5322 quoted string, so commas and the like cannot split the address.
pub(crate) fn quoted(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).collect();
    format!("\"{}\"", cleaned.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn display_names_are_quoted_so_they_cannot_add_recipients() {
        assert_eq!(quoted("Zoë Smith"), "\"Zoë Smith\"");
        assert_eq!(quoted("Smith, Zoë"), "\"Smith, Zoë\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted("line\r\nBcc: x@y.z"), "\"lineBcc: x@y.z\"");
        let mailbox: lettre::message::Mailbox =
            format!("{} <zoe@example.org>", quoted("Smith, \"Z\" <evil@example.org>")).parse().unwrap();
        assert_eq!(mailbox.email.to_string(), "zoe@example.org");
    }
}
