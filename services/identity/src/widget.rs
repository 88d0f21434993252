//! The chat widget's member identity, free of HTTP: sealing a tenant's widget secret, deciding whom a token request
//! is for (a member the host site vouched for with an HMAC of their identifier, or an anonymous visitor where the
//! tenant allows them), and issuing the short-lived token bound to the page's origin.
//!
//! It must not decide how origins are checked or answers rendered: the routes do.

use crate::db::widget::StoredWidget;
use crate::domain::scope::{MEMBER_SCOPE, MEMBER_STORAGE_SCOPE};
use crate::domain::{MemberIdentifier, WebOrigin, WidgetSecret, WidgetSubject};
use crate::signing::SigningKeys;
use almoner_http::Claims;
use almoner_http::rate_limit::Limit;
use almoner_secret_box::SecretBox;
use almoner_types::ParseError;
use uuid::Uuid;

/// What member tokens need, shared by the widget's routes.
#[derive(Clone)]
pub struct MemberTokens {
    pub keys: SigningKeys,
    /// `None` when `widget.secrets_key` is not set: no secret can be sealed or opened.
    pub sealer: Option<SecretBox>,
    pub issuer: String,
    pub ttl_secs: u64,
    /// Refused token requests tolerated per tenant and client address before `429`.
    pub failures_per_client: Limit,
}

/// Why a token request is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No hash where one is required; a hash that is malformed, for another identifier, or made with another
    /// (or a replaced) secret; or a tenant without a secret. One answer for all, so nothing is revealed.
    #[error("the member's identity is not verified")]
    Unverified,
    /// A hash was sent but this installation has no `widget.secrets_key` to open secrets with.
    #[error("widget.secrets_key is not set")]
    SecretsUnconfigured,
    /// A visitor (no hash, identity not required) whose identifier is not a random UUID.
    #[error("identifier {0}")]
    NotAVisitorId(ParseError),
}

/// A token issued to a member or visitor.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
    pub subject: String,
}

impl MemberTokens {
    /// Seals a new secret for the tenant; `None` without `widget.secrets_key`.
    pub fn seal(&self, tenant_id: Uuid, secret: &WidgetSecret) -> Option<Vec<u8>> {
        let sealer = self.sealer.as_ref()?;
        Some(sealer.seal(&WidgetSecret::seal_context(tenant_id), secret.expose()))
    }

    /// Whom a request for `identifier` with `identifier_hash` is for, under the tenant's `settings`.
    pub fn subject(
        &self,
        tenant_id: Uuid,
        settings: &StoredWidget,
        identifier: MemberIdentifier,
        identifier_hash: Option<&str>,
    ) -> Result<WidgetSubject, Refused> {
        let Some(presented) = identifier_hash else {
            if settings.identity_required {
                return Err(Refused::Unverified);
            }
            return identifier.as_visitor().map(WidgetSubject::Visitor).map_err(Refused::NotAVisitorId);
        };
        let sealer = self.sealer.as_ref().ok_or(Refused::SecretsUnconfigured)?;
        let Some(sealed) = &settings.secret_sealed else {
            tracing::info!("member token refused: the tenant has no widget secret yet");
            return Err(Refused::Unverified);
        };
        let secret = match sealer.open(&WidgetSecret::seal_context(tenant_id), sealed) {
            Ok(text) => WidgetSecret::from_stored(text),
            Err(e) => {
                tracing::error!(error = %e,
                    "the tenant's widget secret does not open: was widget.secrets_key changed? The tenant must rotate \
                     its widget secret");
                return Err(Refused::Unverified);
            }
        };
        if secret.verifies(&identifier, presented) {
            Ok(WidgetSubject::Member(identifier))
        } else {
            tracing::info!("member token refused: the identifier hash does not match");
            Err(Refused::Unverified)
        }
    }

    /// Signs a token for `subject` of `tenant_id`, usable only from `origin`.
    pub fn issue(&self, tenant_id: Uuid, subject: &WidgetSubject, origin: &WebOrigin) -> anyhow::Result<IssuedToken> {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_claim(),
            tid: tenant_id,
            scope: format!("{MEMBER_SCOPE} {MEMBER_STORAGE_SCOPE}"),
            iat,
            nbf: iat,
            exp: iat + i64::try_from(self.ttl_secs).unwrap_or(1800),
            jti: Uuid::now_v7(),
            origin: Some(origin.as_str().to_owned()),
        };
        Ok(IssuedToken { access_token: self.keys.sign(&claims)?, expires_in: self.ttl_secs, subject: claims.sub })
    }
}
