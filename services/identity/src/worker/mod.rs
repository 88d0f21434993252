//! Background consumers: what identity does with other services' events.

pub mod reply_mail;
