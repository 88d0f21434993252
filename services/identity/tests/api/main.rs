//! identity's integration tests, one binary: each test spawns the service on port 0 against a fresh database and
//! its own RabbitMQ namespace (see `helpers`).

mod api_keys;
mod events;
mod gateway;
mod health;
mod helpers;
mod migrations;
mod oauth;
mod openapi;
mod sign_in;
mod staff;
mod tenancy;
mod widget;
