//! How an Almoner service is built and run, written once for every service.
//!
//! A service describes what it has: its settings ([`ServiceSettings`]), its schema and migrations, its routes and
//! OpenAPI document, its readiness checks, its consumers and background tasks ([`ServiceBuilder`]), and its own
//! operator commands ([`Service`]). This crate owns how those become a process: settings loaded and validated
//! (exit 2 naming the bad key), telemetry, migrations, the HTTP server with the platform endpoints, and a graceful
//! shutdown within a deadline ([`Application`]). It holds no service logic.

pub mod builder;
pub mod cli;
pub mod settings;

pub use builder::{Application, ServiceBuilder};
pub use cli::{NoCommands, Service, main};
pub use settings::ServiceSettings;

#[doc(hidden)]
pub use mimalloc;

/// Makes the binary allocate through mimalloc rather than glibc's malloc; invoke it once in a service's
/// `main.rs`. A request's many small, short-lived allocations (headers, JSON, rows) cost glibc about a tenth of a
/// busy service's CPU (perf on fundraising at a giving day's rate: malloc, free and consolidation together), and
/// mimalloc's per-thread free lists less than half of that. storage does without: it streams large files with
/// little allocation per request, and mimalloc's arenas keep more memory resident than its streaming bound allows.
#[macro_export]
macro_rules! fast_allocator {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::mimalloc::MiMalloc = $crate::mimalloc::MiMalloc;
    };
}
