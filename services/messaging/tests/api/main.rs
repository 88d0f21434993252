//! messaging's integration tests, one binary: each test spawns the service on port 0 against a fresh database, its
//! own RabbitMQ namespace and a fake identity issuing tokens.

mod campaigns;
mod contacts;
mod conversations;
mod do_not_contact;
mod helpers;
mod imports;
mod kill;
mod migrations;
mod openapi;
mod segments;
mod sending;
mod settings;
mod templates;
