//! messaging's HTTP API, one module per resource. Each registers its handlers with their OpenAPI operations.

pub mod campaigns;
pub mod contact_imports;
pub mod contacts;
pub mod conversation_imports;
pub mod conversations;
pub mod do_not_contact;
pub mod links;
pub mod member;
pub mod provider;
pub mod segments;
pub mod settings;
pub mod templates;

use almoner_http::endpoints::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    contacts::configure(cfg);
    campaigns::configure(cfg);
    contact_imports::configure(cfg);
    do_not_contact::configure(cfg);
    links::configure(cfg);
    settings::configure(cfg);
    templates::configure(cfg);
    provider::configure(cfg);
    segments::configure(cfg);
    conversations::configure(cfg);
    member::configure(cfg);
    conversation_imports::configure(cfg);
}

/// Who did it, as stored beside what they did: the token's subject (`staff:<id>`, `api_key:<id>`).
pub fn actor(principal: &almoner_http::Principal) -> String {
    principal.subject.clone()
}
