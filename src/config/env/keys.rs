//! The sections of `proxy.toml` and the keys of each, as serde knows them: read from
//! the structs' `Deserialize` impls, so that a key added to a struct can be set from
//! the environment without a list here to keep in step.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::config::{self, ldap, oidc, token};

/// Every section, in the order of [`config::Config`].
pub fn sections() -> &'static [&'static str] {
    fields::<config::Config>()
}

/// The keys of `section`; empty for a name that is no section.
pub fn of(section: &str) -> &'static [&'static str] {
    match section {
        "listen" => fields::<config::ListenConfig>(),
        "tls" => fields::<config::TlsConfig>(),
        "upstream" => fields::<config::UpstreamConfig>(),
        "auth" => fields::<config::AuthConfig>(),
        "forwarding" => fields::<config::ForwardingConfig>(),
        "user_agent" => fields::<config::UserAgentConfig>(),
        "limits" => fields::<config::LimitsConfig>(),
        "shutdown" => fields::<config::ShutdownConfig>(),
        "throttle" => fields::<config::ThrottleConfig>(),
        "reload" => fields::<config::ReloadConfig>(),
        "admin" => fields::<config::AdminConfig>(),
        "log" => fields::<config::LogConfig>(),
        "authz" => fields::<config::AuthzConfig>(),
        "headers" => fields::<config::HeadersConfig>(),
        "ldap" => fields::<ldap::LdapConfig>(),
        "token" => fields::<token::TokenConfig>(),
        "oidc" => fields::<oidc::OidcConfig>(),
        _ => &[],
    }
}

/// The field names a derived `Deserialize` of a struct asks for.
fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The capture always ends in an error, by design: only `names` is wanted.
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// A deserializer that records the fields of the struct asked of it, then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_has_its_keys() {
        let sections = sections();
        assert_eq!(sections.len(), 17, "{sections:?}");
        for section in sections {
            assert!(!of(section).is_empty(), "[{section}] has no keys");
        }
        assert!(of("ldap").contains(&"url"));
        assert!(of("token").contains(&"service"));
        assert!(of("headers").contains(&"strict_transport_security"));
        assert_eq!(of("authz"), ["push_group", "groups", "rules", "rules_file"]);
        assert!(of("nope").is_empty());
    }
}
