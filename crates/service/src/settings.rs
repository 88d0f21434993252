//! The settings sections every service has, whatever else it adds.

use almoner_config::{AmqpSettings, AuthSettings, DatabaseSettings, Problems, ServerSettings, TelemetrySettings};
use serde::de::DeserializeOwned;

/// A service's settings: the shared sections, found by [`common_settings!`](crate::common_settings).
pub trait ServiceSettings: DeserializeOwned + almoner_config::Validate + Send + Sync + 'static {
    fn server(&self) -> &ServerSettings;
    fn database(&self) -> &DatabaseSettings;
    fn amqp(&self) -> &AmqpSettings;
    fn telemetry(&self) -> &TelemetrySettings;
    fn auth(&self) -> &AuthSettings;

    /// Checks the shared sections; a service's `Validate` calls it, then checks its own.
    fn validate_common(&self, problems: &mut Problems) {
        self.server().validate(problems);
        self.database().validate(problems);
        self.amqp().validate(problems);
        self.telemetry().validate(problems);
        self.auth().validate(problems);
    }
}

/// Implements [`ServiceSettings`] for a settings struct whose shared sections are the fields `server`, `database`,
/// `amqp`, `telemetry` and `auth`.
#[macro_export]
macro_rules! common_settings {
    ($settings:ty) => {
        impl $crate::ServiceSettings for $settings {
            fn server(&self) -> &::almoner_config::ServerSettings {
                &self.server
            }
            fn database(&self) -> &::almoner_config::DatabaseSettings {
                &self.database
            }
            fn amqp(&self) -> &::almoner_config::AmqpSettings {
                &self.amqp
            }
            fn telemetry(&self) -> &::almoner_config::TelemetrySettings {
                &self.telemetry
            }
            fn auth(&self) -> &::almoner_config::AuthSettings {
                &self.auth
            }
        }
    };
}
